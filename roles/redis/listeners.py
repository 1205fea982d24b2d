"""The sockets Redis listens on: the host's address and loopback."""

from __future__ import annotations

from gpuaas.listeners import LOOPBACK, Listener, on
from gpuaas.profile import Host, Profile


def listeners(profile: Profile, node: Host) -> list[Listener]:
    port, address = profile.services.redis.port, str(node.address)
    return [
        on(address, "tcp", port, "redis", "services.redis.port", True),
        on(LOOPBACK, "tcp", port, "redis", "services.redis.port", True),
    ]
