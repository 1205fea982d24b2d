"""The whole desired state of roles/nats as probes, checked in one round trip (see gpuaas.probe)."""

from __future__ import annotations

from gpuaas.operations import pinned_program_probe
from gpuaas.probe import Probe, account_probe, owned_files_probe, services_probe
from gpuaas.profile import Host, Profile
from roles.nats.config import AUTH, CONFIG, PROGRAM_LINK, UNIT, profile_auth_file, rendered_files, settings_for


def probes(profile: Profile, node: Host) -> list[Probe]:
    auth = profile_auth_file(profile)
    settings, rendered = settings_for(profile), rendered_files(profile, node)
    return [
        pinned_program_probe(profile, settings.artifact, PROGRAM_LINK),
        account_probe("nats", (settings.store_dir,)),
        owned_files_probe(
            "files",
            {
                CONFIG: (rendered[CONFIG], "640", "root", "nats"),
                AUTH: (auth.reveal(), "640", "root", "nats"),
                UNIT: (rendered[UNIT], "644", "root", "root"),
            },
        ),
        services_probe(running=["nats"], enabled=["nats"]),
    ]
