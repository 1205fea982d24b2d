"""The desired state of roles/temporal in dev mode as probes, checked in one round trip (see gpuaas.probe).
Server mode always runs its operations: its schema and namespace checks are facts of their own."""

from __future__ import annotations

from gpuaas.forwarding import forward_sockets, forward_units
from gpuaas.operations import pinned_program_probe
from gpuaas.probe import Probe, account_probe, owned_files_probe, services_probe
from gpuaas.profile import Host, Profile
from roles.temporal.config import PROGRAM_LINK, UNIT, data_dir, forwards, rendered_files, settings_for


def probes(profile: Profile, node: Host) -> list[Probe]:
    """Dev mode's whole state; none for server mode (its deploy always runs its operations)."""
    settings = settings_for(profile)
    if settings.mode != "dev":
        return []
    unit, forwarded = rendered_files(profile, node)[UNIT], forwards(profile, node)
    forward_files = {
        path: (content, "644", "root", "root")
        for forward in forwarded
        for path, content in forward_units(forward).items()
    }
    units_running = ["temporal", *forward_sockets(forwarded)]
    return [
        pinned_program_probe(profile, settings.artifact, PROGRAM_LINK),
        account_probe("temporal", (data_dir(settings),)),
        owned_files_probe("files", {UNIT: (unit, "644", "root", "temporal")} | forward_files),
        services_probe(running=units_running, enabled=units_running),
    ]
