"""The sockets roles/object_store listens on."""

from __future__ import annotations

from gpuaas.listeners import LOOPBACK, Listener, on
from gpuaas.profile import Host, Profile
from roles.object_store.settings import GRPC_OFFSET


def listeners(profile: Profile, node: Host) -> list[Listener]:
    """SeaweedFS: its S3 API on the host's address (systemd's socket, signed requests only); every
    server, the gateway itself included, and each one's gRPC port on loopback."""
    address = str(node.address)
    store = profile.services.object_store
    if not store.enabled:
        return []
    found = [on(address, "tcp", store.s3_port, "object_store", "services.object_store.s3_port", True)]
    for name in ("s3_port", "master_port", "volume_port", "filer_port"):
        port, field = getattr(store, name), f"services.object_store.{name}"
        found.append(on(LOOPBACK, "tcp", port, "object_store", field, name == "s3_port"))
        found.append(on(LOOPBACK, "tcp", port + GRPC_OFFSET, "object_store", f"{field} (gRPC: + {GRPC_OFFSET})", False))
    return found
