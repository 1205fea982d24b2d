"""Deploy of roles/gpu: the detection gate, the driver's items, then the host's honest state."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError

from gpuaas.context import current_node, current_profile
from gpuaas.managed import converge
from roles.gpu.facts import NvidiaDevices
from roles.gpu.operations import gpu_state
from roles.gpu.state import desired, settings_for
from roles.gpu.status import device_findings


@deploy("GPU")
def gpu() -> None:
    profile, node = current_profile(), current_node()
    settings = settings_for(profile, node)
    if node.gpu is None:
        gpu_state(name="Report the GPU host's state", declared=None, driver=settings.driver)
        return
    if settings.on_mismatch == "fail":
        (devices,) = device_findings(node.gpu, host.get_fact(NvidiaDevices))
        if devices.status != "ok":
            raise DeployError(f"{node.name}: {devices.message} (roles.gpu.on_mismatch is fail in {profile.source})")
    converge("GPU", desired(profile, node))
    fail_on = ("failed", "drift") if settings.on_mismatch == "fail" else ()
    gpu_state(name="Report the GPU host's state", declared=node.gpu, driver=settings.driver, fail_on=fail_on)
