"""The device lane: the role's detection and verification facts against the machine they run on (pyinfra's
`@local`), with no profile and no cluster, for a machine that has an NVIDIA GPU and its driver."""

from __future__ import annotations

import json
from dataclasses import asdict

from pyinfra import host
from pyinfra.api import operation
from pyinfra.api.exceptions import OperationError

from roles.gpu.facts import GpuHost
from roles.gpu.nvidia import smi_failure
from roles.gpu.status import installed_driver


def device_problems(devices: list, state) -> list[str]:
    """What does not hold on a GPU machine: nvidia-smi answers, sees as many GPUs as sysfs shows, with a
    parsed driver version and memory above zero on each."""
    problems = []
    failure = smi_failure(state.smi_exit, state.smi_output)
    if failure is not None:
        return [failure]
    if len(state.gpus) != len(devices):
        problems.append(f"nvidia-smi reports {len(state.gpus)} GPU(s); sysfs shows {len(devices)}")
    for gpu in state.gpus:
        if not gpu.driver_version or gpu.driver_version.count(".") < 1:
            problems.append(f"GPU {gpu.index}: no driver version in nvidia-smi's answer")
        if not gpu.memory_mib:
            problems.append(f"GPU {gpu.index}: memory.total is not above zero")
    return problems


@operation()
def device_check():
    """
    Change nothing; read the NVIDIA GPUs and their driver on this machine, print them, and fail when the
    checks of device_problems do not hold. A machine without an NVIDIA GPU says so and passes.
    """
    devices, state = host.get_fact(GpuHost)
    if not devices:
        host.noop("no NVIDIA GPU on this machine's PCI bus: nothing to check")
        return
    report = {
        "devices": [asdict(d) for d in devices],
        "driver": {
            "installed": installed_driver(state, "preinstalled"),
            "loaded": state.loaded and state.loaded.version,
            "cuda": state.cuda,
        },
        "gpus": [asdict(g) for g in state.gpus],
    }
    problems = device_problems(devices, state)
    if problems:
        raise OperationError("; ".join(problems) + f" (read: {json.dumps(report, sort_keys=True)})")
    host.noop(f"GPU device lane: {json.dumps(report, sort_keys=True)}")
    yield from ()
