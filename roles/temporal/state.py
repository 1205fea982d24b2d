"""The desired state of roles/temporal in dev mode as probes, checked in one round trip (see gpuaas.probe).
Server mode always runs its operations: its schema and namespace checks are facts of their own."""

from __future__ import annotations

from gpuaas.operations import pinned_program_probe
from gpuaas.probe import Probe, account_probe, owned_files_probe, services_probe
from gpuaas.profile import Host, Profile
from roles.temporal.config import PROGRAM_LINK, UNIT, data_dir, rendered_files, settings_for


def probes(profile: Profile, node: Host) -> list[Probe]:
    """Dev mode's whole state; none for server mode (its deploy always runs its operations)."""
    settings = settings_for(profile)
    if settings.mode != "dev":
        return []
    return [
        pinned_program_probe(profile, settings.artifact, PROGRAM_LINK),
        account_probe("temporal", (data_dir(settings),)),
        owned_files_probe("files", {UNIT: (rendered_files(profile, node)[UNIT], "644", "root", "temporal")}),
        services_probe(running=["temporal"], enabled=["temporal"]),
    ]
