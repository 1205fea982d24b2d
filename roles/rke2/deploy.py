"""Deploy of roles/rke2: the pinned release, config.yaml, tokens, registries, manifests, the unit,
and a bounded wait until the node is ready (everything declared in roles/rke2/state.py)."""

from __future__ import annotations

from pyinfra.api import deploy

from gpuaas.context import current_node, current_profile
from gpuaas.managed import converge
from roles.rke2.state import desired


@deploy("RKE2")
def rke2() -> None:
    # desired() verifies the release on the controller first: a mismatch stops the deploy before anything
    # is queued.
    converge("RKE2", desired(current_profile(), current_node()))
