"""The whole desired state of roles/redis as probes, checked in one round trip (see gpuaas.probe)."""

from __future__ import annotations

import shlex

from gpuaas.probe import Probe, owned_files_probe, packages_probe, services_probe
from gpuaas.profile import Host, Profile
from roles.redis.config import AUTH, CONFIG, INCLUDE_LINE, MAIN_CONFIG, profile_auth_file, rendered_files


def probes(profile: Profile, node: Host) -> list[Probe]:
    auth = profile_auth_file(profile)
    return [
        packages_probe(["redis-server"]),
        owned_files_probe(
            "files",
            {
                CONFIG: (rendered_files(profile, node)[CONFIG], "640", "root", "redis"),
                AUTH: (auth.reveal(), "640", "root", "redis"),
            },
        ),
        Probe("include", f"grep -cxF {shlex.quote(INCLUDE_LINE)} {MAIN_CONFIG}", "[1-9][0-9]*", pattern=True),
        services_probe(running=["redis-server"], enabled=["redis-server"]),
    ]
