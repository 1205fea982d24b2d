"""The sockets roles/keycloak listens on."""

from __future__ import annotations

from gpuaas.listeners import Listener, on
from gpuaas.profile import Host, Profile


def listeners(profile: Profile, node: Host) -> list[Listener]:
    """Keycloak's HTTP port (behind the TLS edge) and its management port (health, metrics)."""
    address = str(node.address)
    keycloak = profile.services.keycloak
    if not keycloak.enabled:
        return []
    field = "services.keycloak.{}".format
    return [
        on(address, "tcp", keycloak.http_port, "keycloak", field("http_port"), True),
        on(address, "tcp", keycloak.management_port, "keycloak", field("management_port"), False),
    ]
