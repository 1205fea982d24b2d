"""Deploy of roles/keycloak: OpenJDK, the pinned distribution, kc.sh build, config, realm, unit."""

from __future__ import annotations

from pyinfra.api import deploy

from gpuaas.context import current_node, current_profile
from gpuaas.managed import converge
from roles.keycloak.state import desired


@deploy("Keycloak")
def keycloak() -> None:
    converge("Keycloak", desired(current_profile(), current_node()))
