"""The sockets OpenBao listens on: its API and its cluster port, on the host's address."""

from __future__ import annotations

from gpuaas.listeners import Listener, on
from gpuaas.profile import Host, Profile


def listeners(profile: Profile, node: Host) -> list[Listener]:
    bao, address = profile.services.openbao, str(node.address)
    return [
        on(address, "tcp", bao.port, "openbao", "services.openbao.port", True),
        on(address, "tcp", bao.cluster_port, "openbao", "services.openbao.cluster_port", True),
    ]
