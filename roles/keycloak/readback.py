"""What roles/keycloak reads back from the current host: Keycloak's version and readiness, from its
home and management port."""

from __future__ import annotations

from pyinfra import host

from gpuaas.profile import Host, Profile
from roles.keycloak.config import HOME_LINK
from roles.keycloak.facts import KeycloakReadiness


def read_back(profile: Profile, node: Host) -> dict | None:
    port = profile.services.keycloak.management_port
    found = host.get_fact(KeycloakReadiness, home=HOME_LINK, address=str(node.address), management_port=port)
    if not found:
        return {"version": None, "status": "failed", "message": "no Keycloak home on the host"}
    ready = found.get("ready")
    message = f"Keycloak {found.get('version')}, {'ready' if ready else 'not ready'}"
    return {**found, "status": "ok" if ready else "failed", "message": message}
