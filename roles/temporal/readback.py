"""What roles/temporal reads back from the current host: Temporal's health and server version, from its frontend."""

from __future__ import annotations

from pyinfra import host

from gpuaas.profile import Host, Profile
from roles.temporal.config import PROGRAM_LINK
from roles.temporal.facts import TemporalCluster


def read_back(profile: Profile, node: Host) -> dict | None:
    address = f"{node.address}:{profile.services.temporal.port}"
    return host.get_fact(TemporalCluster, program=PROGRAM_LINK, address=address)
