"""The sockets PostgreSQL listens on: the host's address and loopback."""

from __future__ import annotations

from gpuaas.listeners import LOOPBACK, Listener, on
from gpuaas.profile import Host, Profile


def listeners(profile: Profile, node: Host) -> list[Listener]:
    port, address = profile.services.postgres.port, str(node.address)
    return [
        on(address, "tcp", port, "postgres", "services.postgres.port", True),
        on(LOOPBACK, "tcp", port, "postgres", "services.postgres.port", True),
    ]
