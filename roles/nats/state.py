"""Everything roles/nats keeps on a data host, declared once: the deploy converges it and the one-round-trip
check reads it back (see gpuaas.managed)."""

from __future__ import annotations

from gpuaas.managed import Account, Item, PinnedProgram, SecretFile, Service, Template
from gpuaas.profile import Host, Profile
from roles.nats.config import (
    AUTH,
    CONFIG,
    PROGRAM_LINK,
    UNIT,
    context,
    monitor_url,
    profile_auth_file,
    settings_for,
    templates,
)


def desired(profile: Profile, node: Host) -> list[Item]:
    """The pinned nats-server, its account and JetStream store, its config, credentials and unit, and the
    server running on them (restarted when any of them changed)."""
    settings = settings_for(profile)
    data, paths = context(profile, node), templates()
    program = PinnedProgram(profile, settings.artifact, PROGRAM_LINK)
    config = Template(CONFIG, paths[CONFIG], data, mode="640", group="nats")
    auth = SecretFile(AUTH, profile_auth_file(profile), mode="640", group="nats", what="the credentials")
    unit = Template(UNIT, paths[UNIT], data, mode="644")
    healthz = monitor_url(settings, "/healthz")
    return [
        program,
        Account("nats", home="/var/lib/nats", private_dirs=(settings.store_dir,)),
        config,
        auth,
        unit,
        Service(
            "nats",
            ready=f"curl -fsS --max-time 2 {healthz} >/dev/null",
            restart_on=(config, auth, unit, program),
            unit_file=unit,
        ),
    ]
