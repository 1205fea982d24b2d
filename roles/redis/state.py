"""Everything roles/redis keeps on a data host, declared once: the deploy converges it and the one-round-trip
check reads it back (see gpuaas.managed)."""

from __future__ import annotations

from gpuaas.managed import Item, Line, Packages, SecretFile, Service, Template
from gpuaas.profile import Host, Profile
from roles.redis.config import (
    AUTH,
    CONFIG,
    INCLUDE_LINE,
    MAIN_CONFIG,
    context,
    profile_auth_file,
    settings_for,
    templates,
)


def desired(profile: Profile, node: Host) -> list[Item]:
    settings = settings_for(profile)
    config = Template(CONFIG, templates()[CONFIG], context(profile, node), mode="640", group="redis")
    auth = SecretFile(AUTH, profile_auth_file(profile), mode="640", group="redis", what="the password")
    included = Line(MAIN_CONFIG, INCLUDE_LINE)
    # An unauthenticated PING answers NOAUTH once the server is up: readiness without the password.
    ping = f"redis-cli -h {node.address} -p {settings.port} ping 2>&1 | grep -qE 'PONG|NOAUTH'"
    return [
        Packages(("redis-server",)),
        config,
        auth,
        included,
        Service("redis-server", ready=ping, restart_on=(config, auth, included)),
    ]
