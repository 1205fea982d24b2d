"""Deploy of roles/redis: Debian's redis-server, its configuration include, the password and a restart."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import apt, files

from filters.jinja import jinja_env_kwargs
from gpuaas.context import current_node, current_profile
from gpuaas.operations import secret_file, service_running
from gpuaas.probe import in_place
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
from roles.redis.state import probes


@deploy("Redis")
def redis() -> None:
    profile, node = current_profile(), current_node()
    settings = settings_for(profile)
    if in_place("Redis", probes(profile, node)):
        return

    apt.packages(name="Ensure redis-server is installed", packages=["redis-server"], update=True, cache_time=3600)
    config = files.template(
        name=f"Ensure {CONFIG} is rendered",
        src=templates()[CONFIG],
        dest=CONFIG,
        user="root",
        group="redis",
        mode="640",
        jinja_env_kwargs=jinja_env_kwargs(),
        **context(profile, node),
    )
    auth = secret_file(
        name=f"Ensure {AUTH} holds the password",
        path=AUTH,
        secret=profile_auth_file(profile),
        mode="640",
        group="redis",
    )
    included = files.line(
        name=f"Ensure {MAIN_CONFIG} includes {CONFIG}", path=MAIN_CONFIG, line=f"^{INCLUDE_LINE}$", replace=INCLUDE_LINE
    )
    # An unauthenticated PING answers NOAUTH once the server is up: readiness without the password.
    ping = f"redis-cli -h {node.address} -p {settings.port} ping 2>&1 | grep -qE 'PONG|NOAUTH'"
    service_running("redis-server", changed=[config, auth, included], ready=ping)
