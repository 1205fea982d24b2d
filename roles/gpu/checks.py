"""roles/gpu's checks of a profile: GPUs only on cluster hosts, and a pinned version of the pinned branch."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import ValidationError

from gpuaas.errors import Problem
from gpuaas.groups import CLUSTER
from gpuaas.profile import Host, Profile
from roles.gpu.settings import GpuSettings


def host_settings(profile: Profile, node: Host) -> GpuSettings | None:
    """The host's effective settings; None when they do not validate (the profile's own check says why)."""
    try:
        return profile.role_settings("gpu", node)
    except ValidationError:
        return None


def problems(profile: Profile) -> Iterator[Problem]:
    for index, node in enumerate(profile.hosts):
        if node.gpu is None:
            continue
        if not any(group in node.groups for group in CLUSTER):
            yield Problem(
                f"hosts[{index}].gpu",
                "GPUs are used through the cluster: only rke2_agents and rke2_servers hosts declare them",
            )
        settings = host_settings(profile, node)
        if settings is None:
            continue
        driver = settings.driver
        if driver.version is not None and driver.version.split(".")[0] != driver.branch:
            where = f"hosts[{index}].roles.gpu" if "gpu" in node.roles else "roles.gpu"
            yield Problem(
                f"{where}.driver.version", f"is not a version of the pinned branch {driver.branch} (driver.branch)"
            )
