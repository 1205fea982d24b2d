"""Operations of roles/gpu that change nothing on the host: they report what the role found."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import operation
from pyinfra.api.exceptions import OperationError

from gpuaas.profile import Gpu
from roles.gpu.facts import GpuHost
from roles.gpu.settings import Driver
from roles.gpu.status import assess


@operation()
def gpu_state(declared: Gpu | None, driver: Driver, fail_on: tuple[str, ...] = ("failed",)):
    """
    Change nothing; report the GPU host's honest state (devices, driver, kernel module, nvidia-smi, Xid
    events) as the operation's outcome, read when the operation runs. A reboot that is needed is reported,
    never done.

    + declared: the host's `gpu:` entry (None: the host gets nothing, and says so)
    + driver: the host's driver settings
    + fail_on: finding statuses that fail the host (the profile's `on_mismatch: fail` adds `drift`)
    """
    if declared is None:
        host.noop("GPU: the profile declares no GPU on this host: nothing to do")
        return
    found = assess(declared, driver, *host.get_fact(GpuHost))
    failing = [f.message for f in found.findings if f.status in fail_on]
    if failing:
        raise OperationError("; ".join(failing))
    host.noop(f"GPU: {found.status}: {found.summary()}")
    yield from ()
