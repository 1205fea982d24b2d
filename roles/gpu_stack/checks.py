"""roles/gpu_stack's checks of a profile: exactly one owner of each GPU host's driver, a pinned chart
archive that exists, a toolkit wiring known for the pinned versions, and no roles/rke2 chart in the way of
this role's manifests."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import ValidationError

from gpuaas.errors import Problem
from gpuaas.groups import RKE2_SERVERS
from gpuaas.profile import Profile
from roles.gpu.checks import host_settings
from roles.gpu_stack.config import rke2_version, settings_of
from roles.gpu_stack.runtime import UnsupportedVersions, wiring


def problems(profile: Profile) -> Iterator[Problem]:
    if not profile.group(RKE2_SERVERS):
        return  # The profile's topology check asks for a server.
    try:
        stack = settings_of(profile)
    except ValidationError:
        return  # The profile's check of the roles' settings names what does not validate.
    for index, node in enumerate(profile.hosts):
        settings = host_settings(profile, node) if node.gpu is not None else None
        if settings is None:
            continue
        where = f"hosts[{index}].roles.gpu" if "gpu" in node.roles else "roles.gpu"
        method = settings.driver.method
        if method == "operator" and stack.provider != "operator":
            yield Problem(
                f"{where}.driver.method",
                f"is operator on {node.name}, but roles.gpu_stack.provider is {stack.provider}: nobody would "
                "install the driver (use distro or preinstalled, or the operator provider)",
            )
    chart = {"operator": stack.operator.chart, "device-plugin": stack.device_plugin.chart}.get(stack.provider)
    if chart is not None and chart.archive is not None and chart.archive not in profile.artifacts:
        section = "operator" if stack.provider == "operator" else "device_plugin"
        yield Problem(f"roles.gpu_stack.{section}.chart.archive", "names an artifact that `artifacts` does not pin")
    try:
        rke2 = rke2_version(profile)
    except ValidationError:
        rke2 = None  # roles.rke2 does not validate: the profile's check of the roles' settings says why.
    if stack.provider == "operator" and rke2 is not None:
        try:
            wiring(stack.operator.chart.version, rke2)
        except UnsupportedVersions as exc:
            yield Problem("roles.gpu_stack.operator.chart.version", str(exc))
    yield from _no_clashing_charts(profile)


#: The HelmChart names whose manifests (gpuaas-NAME.yaml) this role writes.
OWN_CHARTS = ("gpu-operator", "nvidia-device-plugin")


def _no_clashing_charts(profile: Profile) -> Iterator[Problem]:
    """roles/rke2's own helm_charts may not take the names of this role's manifests: both would write the file."""
    layers = [("roles.rke2", profile.roles.get("rke2", {}))]
    layers += [(f"hosts[{i}].roles.rke2", node.roles.get("rke2", {})) for i, node in enumerate(profile.hosts)]
    for prefix, layer in layers:
        charts = layer.get("helm_charts", []) if isinstance(layer, dict) else []
        for index, chart in enumerate(charts if isinstance(charts, list) else []):
            if isinstance(chart, dict) and chart.get("name") in OWN_CHARTS:
                yield Problem(
                    f"{prefix}.helm_charts[{index}].name",
                    "is the name of a manifest roles/gpu_stack writes: set the GPU stack under roles.gpu_stack",
                )
