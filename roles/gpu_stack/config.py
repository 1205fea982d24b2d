"""What roles/gpu_stack writes on the servers, computed from the profile (used by the deploy and by
render): the HelmChart of the GPU Operator or of the standalone device plugin, in RKE2's manifests
directory, with the values the pinned operator and RKE2 versions call for."""

from __future__ import annotations

from typing import Any

import yaml

from gpuaas.groups import RKE2_SERVERS
from gpuaas.profile import Host, Profile
from roles.gpu.checks import host_settings
from roles.gpu_stack.runtime import operator_runtime_values
from roles.gpu_stack.settings import Chart, GpuStackSettings
from roles.rke2.config import DATA_DIR, MANIFESTS, first_server

HEADER = "# Managed by gpuaas roles/gpu_stack.\n"
#: Files here are served by the servers at https://%{KUBERNETES_API}%/static/charts/ (air-gapped charts).
STATIC_CHARTS = f"{DATA_DIR}/server/static/charts"
OPERATOR_MANIFEST = f"{MANIFESTS}/gpuaas-gpu-operator.yaml"
DEVICE_PLUGIN_MANIFEST = f"{MANIFESTS}/gpuaas-nvidia-device-plugin.yaml"
#: The files the role may have written: a provider change takes the other one back.
MANIFEST_FILES = (OPERATOR_MANIFEST, DEVICE_PLUGIN_MANIFEST)
#: The GPU Operator leaves its driver container off a node carrying this label set to false.
DRIVER_DEPLOY_LABEL = "nvidia.com/gpu.deploy.driver"


def settings_of(profile: Profile) -> GpuStackSettings:
    return profile.role_settings("gpu_stack", first_server(profile))


def rke2_version(profile: Profile) -> str | None:
    """The pinned RKE2 version (None while RKE2 is not pinned)."""
    artifact = profile.role_settings("rke2", first_server(profile)).artifact
    return profile.artifacts[artifact].version if artifact in profile.artifacts else None


def unpinned_rke2(profile: Profile) -> str | None:
    """Why the GPU stack cannot be deployed: the cluster it goes into is not (its values follow RKE2's version)."""
    return None if rke2_version(profile) is not None else "it goes into the RKE2 cluster, whose release is not pinned"


def gpu_hosts(profile: Profile) -> list[Host]:
    return [node for node in profile.hosts if node.gpu is not None]


def operator_owns_driver(profile: Profile, node: Host) -> bool:
    settings = host_settings(profile, node)
    return settings is not None and settings.driver.method == "operator"


def chart_archive_name(name: str, chart: Chart) -> str:
    return f"{name}-{chart.version}.tgz"


def chart_source(name: str, chart: Chart) -> dict[str, str]:
    """The HelmChart's chart fields: the repository at the pinned version, or the archive the servers serve."""
    if chart.archive is not None:
        return {"chart": f"https://%{{KUBERNETES_API}}%/static/charts/{chart_archive_name(name, chart)}"}
    return {"chart": name, "repo": str(chart.repo).rstrip("/"), "version": chart.version}


def helm_chart(name: str, chart: Chart, values: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "helm.cattle.io/v1",
        "kind": "HelmChart",
        "metadata": {"name": name, "namespace": "kube-system"},
        "spec": {
            **chart_source(name, chart),
            "targetNamespace": chart.namespace,
            "createNamespace": True,
            "valuesContent": yaml.safe_dump(values, sort_keys=True),
        },
    }


def operator_values(profile: Profile, settings: GpuStackSettings, rke2: str) -> dict[str, Any]:
    """The GPU Operator's values: the driver container only where a host gives it the driver, the toolkit
    wired into RKE2's containerd as the versions call for, the device plugin, DCGM exporter and MIG."""
    operator = settings.operator
    values: dict[str, Any] = {
        "driver": {"enabled": any(operator_owns_driver(profile, node) for node in gpu_hosts(profile))},
        "toolkit": {"enabled": operator.toolkit},
        "devicePlugin": {"enabled": operator.device_plugin},
        "dcgmExporter": {"enabled": operator.dcgm_exporter},
        "migManager": {"enabled": operator.mig_manager},
        "mig": {"strategy": operator.mig_strategy},
    }
    runtime = operator_runtime_values(operator.chart.version, rke2)
    for key, value in runtime.items():
        values[key] = {**values.get(key, {}), **value}
    return {**operator.values, **values}


def device_plugin_values(settings: GpuStackSettings) -> dict[str, Any]:
    """The standalone device plugin on the GPU nodes only, through RKE2's `nvidia` RuntimeClass."""
    return {
        "migStrategy": settings.device_plugin.mig_strategy,
        "runtimeClassName": "nvidia",
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
    }


def manifests(profile: Profile) -> dict[str, str]:
    """Manifest path -> the HelmChart the servers apply; none while RKE2 is not pinned (the runtime
    values depend on its version) or without GPU hosts."""
    rke2 = rke2_version(profile)
    if rke2 is None or not gpu_hosts(profile):
        return {}
    settings = settings_of(profile)
    if settings.provider == "operator":
        document = helm_chart("gpu-operator", settings.operator.chart, operator_values(profile, settings, rke2))
        return {OPERATOR_MANIFEST: HEADER + yaml.safe_dump(document, sort_keys=False)}
    if settings.provider == "device-plugin":
        chart = settings.device_plugin.chart
        document = helm_chart("nvidia-device-plugin", chart, device_plugin_values(settings))
        return {DEVICE_PLUGIN_MANIFEST: HEADER + yaml.safe_dump(document, sort_keys=False)}
    return {}


def driver_labels(profile: Profile) -> dict[str, str]:
    """GPU node -> the value of DRIVER_DEPLOY_LABEL: `false` where the host owns its driver, `true` where
    the operator does (only with the operator provider)."""
    if settings_of(profile).provider != "operator":
        return {}
    return {node.name: "true" if operator_owns_driver(profile, node) else "false" for node in gpu_hosts(profile)}


def rendered_files(profile: Profile, node: Host) -> dict[str, str]:
    return manifests(profile) if RKE2_SERVERS in node.groups else {}
