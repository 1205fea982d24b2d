"""What roles/gpu reads back from a GPU host: the GPUs sysfs shows, each GPU as nvidia-smi reports it,
the driver and CUDA versions, and the honest state with its findings."""

from __future__ import annotations

from dataclasses import asdict

from pyinfra import host

from gpuaas.profile import Host, Profile
from roles.gpu.facts import GpuHost
from roles.gpu.status import assess, installed_driver


def read_back(profile: Profile, node: Host) -> dict | None:
    if node.gpu is None:
        return {"declared": None, "state": "no GPU declared", "status": "ok", "message": "no GPU declared"}
    settings = profile.role_settings("gpu", node)
    devices, driver = host.get_fact(GpuHost)
    found = assess(node.gpu, settings.driver, devices, driver)
    return {
        "declared": node.gpu.count,
        "detected": len(devices),
        "devices": [asdict(d) for d in devices],
        "driver": {
            "method": settings.driver.method,
            "installed": installed_driver(driver, settings.driver.method),
            "loaded": driver.loaded.version if driver.loaded else None,
            "cuda": driver.cuda,
        },
        "gpus": [asdict(g) for g in driver.gpus],
        # A change waiting for a reboot is not in place yet: blocked until the host is rebooted.
        "status": "blocked" if found.status == "pending" else found.status,
        "assessment": found.status,
        "message": found.summary() or f"{len(devices)} of {node.gpu.count} GPUs, driver in place",
        "findings": [asdict(f) for f in found.findings],
    }
