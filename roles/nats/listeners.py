"""The sockets NATS listens on: clients on the host's address, monitoring on loopback."""

from __future__ import annotations

from gpuaas.listeners import LOOPBACK, Listener, on
from gpuaas.profile import Host, Profile


def listeners(profile: Profile, node: Host) -> list[Listener]:
    nats = profile.services.nats
    return [
        on(str(node.address), "tcp", nats.port, "nats", "services.nats.port", True),
        on(LOOPBACK, "tcp", nats.monitor_port, "nats", "services.nats.monitor_port", False),
    ]
