"""Rolling upgrade of the NVIDIA driver on the `distro` GPU hosts to the profile's pinned `driver.version`:
the plan (who goes in which batch: ring by ring, `rollout.reserve` at a time) and the per-node steps
deploys/upgrade.py runs with GPUAAS_UPGRADE=gpu-driver. A host counts as done when the module it has
loaded is the pinned version, so a re-run resumes where a stopped rollout ended."""

from __future__ import annotations

from functools import partial

from pyinfra import state
from pyinfra.api.exceptions import DeployError
from pyinfra.operations import server

from gpuaas.inventory import pyinfra_name
from gpuaas.profile import Host, Profile
from roles.gpu.checks import host_settings
from roles.gpu.deploy import gpu
from roles.gpu.facts import NvidiaDriver
from roles.gpu.operations import gpu_state
from roles.rke2.upgrade import Batch, recorded_plan

#: GPUAAS_UPGRADE's value that rolls the driver out instead of RKE2.
DRIVER_UPGRADE = "gpu-driver"
#: Seconds a rebooted host may take to answer again.
REBOOT_TIMEOUT = 900
#: What a host that has no module loaded counts as running.
NOT_LOADED = "0"


def rolled_hosts(profile: Profile) -> list[Host]:
    """The hosts whose driver the rollout installs: a `gpu:` entry and the `distro` method."""
    hosts = []
    for node in profile.hosts:
        settings = host_settings(profile, node) if node.gpu is not None else None
        if settings is not None and settings.driver.method == "distro":
            hosts.append(node)
    return hosts


def target_version(profile: Profile) -> str:
    """The one driver version every rolled host pins; refused when none is pinned or hosts differ."""
    versions = {node.name: host_settings(profile, node).driver.version for node in rolled_hosts(profile)}
    if not versions:
        raise DeployError(f"{profile.source}: no GPU host has the distro driver method: nothing to roll out")
    unpinned = sorted(name for name, version in versions.items() if version is None)
    if unpinned:
        raise DeployError(
            f"{profile.source}: roles.gpu.driver.version is not pinned for {', '.join(unpinned)}: a rollout "
            "goes to one pinned version"
        )
    if len(set(versions.values())) > 1:
        raise DeployError(
            f"{profile.source}: the GPU hosts pin different driver versions; a rollout brings every one to the "
            "same version, ring by ring"
        )
    return next(iter(versions.values()))


def loaded_versions(profile: Profile) -> dict[str, str]:
    """Rolled host -> the version of the module it has loaded (NOT_LOADED when none), read from each."""
    loaded = {}
    for node in rolled_hosts(profile):
        driver = state.inventory.get_host(pyinfra_name(profile, node)).get_fact(NvidiaDriver)
        loaded[node.name] = driver.loaded.version if driver.loaded else NOT_LOADED
    return loaded


def driver_plan(profile: Profile, allow_downgrade: bool) -> tuple[str, list[Batch]]:
    """The pinned version and the rollout's batches over the loaded modules' versions, recorded in
    build/ENV/gpu-driver-plan.json."""
    target = target_version(profile)
    running = partial(loaded_versions, profile)
    return target, recorded_plan(profile, running, target, allow_downgrade, "NVIDIA driver", "gpu-driver-plan.json")


def upgrade_node(profile: Profile, node: Host) -> None:
    """On a drained node: the pinned driver installed (the role's deploy), a reboot into it, then its
    state read back, where anything but `ok` stops the rollout (module not loaded, a mismatch, a GPU
    missing or fallen off the bus)."""
    gpu()
    server.reboot(name=f"Reboot {node.name} into the new driver", reboot_timeout=REBOOT_TIMEOUT)
    settings = profile.role_settings("gpu", node)
    gpu_state(
        name=f"Verify {node.name}'s GPUs and driver after the reboot",
        declared=node.gpu,
        driver=settings.driver,
        fail_on=("failed", "drift", "pending"),
    )
