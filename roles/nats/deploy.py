"""Deploy of roles/nats: the pinned nats-server, its account, JetStream store, config, auth and unit."""

from __future__ import annotations

from pyinfra.api import deploy

from gpuaas.context import current_node, current_profile
from gpuaas.managed import converge
from roles.nats.state import desired


@deploy("NATS JetStream")
def nats() -> None:
    # The pin is verified on the controller first: a mismatch stops the deploy before any operation.
    converge("NATS", desired(current_profile(), current_node()))
