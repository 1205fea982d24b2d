"""The sockets roles/temporal listens on."""

from __future__ import annotations

from gpuaas.listeners import LOOPBACK, Listener, on
from gpuaas.profile import Host, Profile


def listeners(profile: Profile, node: Host) -> list[Listener]:
    """Temporal's frontend (gRPC and HTTP) on the host's address, /metrics on loopback. Dev mode's
    embedded server listens on loopback only (systemd's sockets forward the frontend ports) and picks
    its internal services' ports itself; server mode binds the profile address for every service."""
    address = str(node.address)
    temporal = profile.services.temporal
    if not temporal.enabled:
        return []
    field = "services.temporal.{}".format
    found = [
        on(address, "tcp", temporal.port, "temporal", field("port"), False),
        on(address, "tcp", temporal.http_port, "temporal", field("http_port"), False),
        on(LOOPBACK, "tcp", temporal.metrics_port, "temporal", field("metrics_port"), False),
    ]
    if temporal.mode == "dev":
        loopback = [
            on(LOOPBACK, "tcp", getattr(temporal, name), "temporal", field(name), False)
            for name in ("port", "http_port", "ui_port")
        ]
        picked = on(
            LOOPBACK,
            "tcp",
            None,
            "temporal",
            "services.temporal.mode: dev (the embedded server's own services)",
            False,
            program="temporal",
        )
        return found + loopback + [picked]
    internal = (
        "history_port",
        "matching_port",
        "worker_port",
        "frontend_membership_port",
        "history_membership_port",
        "matching_membership_port",
        "worker_membership_port",
    )
    return found + [on(address, "tcp", getattr(temporal, name), "temporal", field(name), False) for name in internal]
