"""Typed settings of roles/gpu_stack (the profile's `roles.gpu_stack`): every default lives here."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from gpuaas.safetext import ArtifactName, Version, safe_text

#: A Kubernetes namespace (RFC 1123 label).
Namespace = Annotated[
    str,
    safe_text(
        r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?",
        "a namespace of 1 to 63 of a-z, 0-9 and '-', starting and ending with a letter or digit",
    ),
]
#: Values the role sets from the profile's own settings: setting them by hand would fight the role.
OWNED_VALUES = ("driver", "toolkit", "devicePlugin", "dcgmExporter", "migManager", "mig", "cdi")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Chart(_Strict):
    """Where a chart comes from: its repository at a pinned version or, for air-gapped sites, a chart
    archive pinned by sha256 under `artifacts` and served from RKE2's static charts directory."""

    version: Version = Field(description="The chart version, pinned.")
    repo: AnyHttpUrl = Field(description="The chart repository.")
    archive: ArtifactName | None = Field(
        default=None,
        description="An artifact (the chart's .tgz, pinned by sha256) served from the servers' static charts "
        "directory instead of the repository.",
    )
    namespace: Namespace = Field(description="The namespace the release goes to.")


class Operator(_Strict):
    """The NVIDIA GPU Operator: the driver container (for hosts whose driver method is `operator`), the
    container toolkit wired into RKE2's containerd, the device plugin, DCGM exporter and MIG manager."""

    chart: Chart = Field(
        default=Chart(version="v25.10.1", repo="https://helm.ngc.nvidia.com/nvidia", namespace="gpu-operator"),
        description="The gpu-operator chart.",
    )
    toolkit: bool = Field(default=True, description="The container toolkit on every GPU node.")
    device_plugin: bool = Field(default=True, description="The device plugin (`nvidia.com/gpu` resources).")
    dcgm_exporter: bool = Field(default=True, description="DCGM exporter (GPU metrics for Prometheus).")
    mig_manager: bool = Field(default=False, description="The MIG manager (MIG partitions from node labels).")
    mig_strategy: Literal["none", "single", "mixed"] = Field(
        default="single", description="How MIG devices are advertised (`single`: as nvidia.com/gpu)."
    )
    values: dict[str, Any] = Field(
        default={},
        description="More chart values, merged over the role's (not the driver, toolkit, device plugin, DCGM, "
        "MIG or CDI keys, which come from the settings above).",
    )

    @field_validator("values")
    @classmethod
    def _not_owned(cls, values: dict[str, Any]) -> dict[str, Any]:
        owned = [key for key in values if key in OWNED_VALUES]
        if owned:
            raise ValueError(
                f"{', '.join(owned)} come from this role's own settings (the driver's owner from roles.gpu.driver."
                "method, the rest from the fields beside `values`); set them there"
            )
        return values


class DevicePlugin(_Strict):
    """NVIDIA's standalone device plugin, for sites that run the driver and container toolkit on the
    hosts and do not want the operator."""

    chart: Chart = Field(
        default=Chart(
            version="0.17.4", repo="https://nvidia.github.io/k8s-device-plugin", namespace="nvidia-device-plugin"
        ),
        description="The nvidia-device-plugin chart.",
    )
    mig_strategy: Literal["none", "single", "mixed"] = Field(default="none", description="How MIG devices show.")


class GpuStackSettings(_Strict):
    """The GPU stack in the cluster: HelmChart resources in the servers' manifests directory."""

    provider: Literal["operator", "device-plugin", "none"] = Field(
        default="operator",
        description="`operator`: the NVIDIA GPU Operator; `device-plugin`: NVIDIA's standalone device plugin "
        "(drivers and toolkit on the hosts); `none`: no GPU stack in the cluster.",
    )
    operator: Operator = Field(default_factory=Operator, description="The GPU Operator (provider `operator`).")
    device_plugin: DevicePlugin = Field(
        default_factory=DevicePlugin, description="The standalone device plugin (provider `device-plugin`)."
    )
    sample_image: str = Field(
        default="nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0-ubuntu22.04",
        description="The image of the CUDA sample pod GPUAAS_GPU_SAMPLE=yes runs on each GPU node (a mirror's, "
        "in air-gapped sites).",
    )
