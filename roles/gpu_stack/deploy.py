"""Deploy of roles/gpu_stack: the GPU stack's manifests on the servers and the driver owners' labels."""

from __future__ import annotations

from pyinfra.api import deploy

from gpuaas.context import current_node, current_profile
from gpuaas.managed import converge
from roles.gpu_stack.state import desired


@deploy("GPU stack")
def gpu_stack() -> None:
    converge("the GPU stack", desired(current_profile(), current_node()))
