"""Deploy of roles/temporal: dev mode (the temporal CLI's embedded server) or server mode
(temporal-server on PostgreSQL, its schema kept current with temporal-sql-tool)."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import server

from gpuaas.context import current_node, current_profile
from gpuaas.managed import Applied, converge
from roles.temporal.config import PROGRAM_LINK, settings_for
from roles.temporal.facts import TemporalNamespaces
from roles.temporal.settings import TemporalSettings
from roles.temporal.state import desired


@deploy("Temporal")
def temporal() -> None:
    profile, node = current_profile(), current_node()
    settings = settings_for(profile)

    def steps(applied: Applied) -> None:
        if settings.mode == "server":
            _namespaces(settings, str(node.address))

    converge("Temporal", desired(profile, node), steps)


def _namespaces(settings: TemporalSettings, address: str) -> None:
    """Server mode registers the namespaces itself (dev mode's server takes them as flags): each one the
    running server does not list yet."""
    endpoint = f"{address}:{settings.port}"
    for namespace in settings.namespaces:
        server.shell(
            name=f"Ensure namespace {namespace} is registered",
            commands=[
                f"{PROGRAM_LINK} operator namespace create --namespace {shlex.quote(namespace)} "
                f"--address {shlex.quote(endpoint)}"
            ],
            _if=lambda namespace=namespace: (
                namespace not in host.get_fact(TemporalNamespaces, program=PROGRAM_LINK, address=endpoint)
            ),
        )
