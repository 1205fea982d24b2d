"""Typed settings of roles/rke2 (the profile's `roles.rke2`, overridden per host): every default lives here."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from gpuaas.fieldtypes import SecretRef
from roles.rke2.options import AGENT_OPTIONS, SERVER_OPTIONS

Label = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*$")]
Taint = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9./_-]+(=[A-Za-z0-9._-]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$")
]
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]

#: Options the role writes itself from the profile: setting them by hand would fight the role.
MANAGED_OPTIONS = frozenset({
    "token", "token-file", "agent-token", "agent-token-file", "server", "node-name", "node-ip", "advertise-address",
    "tls-san", "cni", "cluster-cidr", "service-cidr", "node-label", "node-taint", "profile", "private-registry",
    "write-kubeconfig-mode", "etcd-snapshot-schedule-cron", "etcd-snapshot-retention", "etcd-s3",
    "etcd-s3-endpoint", "etcd-s3-bucket", "etcd-s3-access-key", "etcd-s3-secret-key", "etcd-s3-region",
    "etcd-s3-folder", "data-dir", "config",
})  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegistryAuth(_Strict):
    """Credentials and TLS for one registry host (registries.yaml `configs`)."""

    username: str | None = Field(default=None, description="User name.")
    password: SecretRef | None = Field(default=None, description="Reference to the password or token.")
    ca_file: str | None = Field(default=None, pattern=r"^/", description="CA bundle on the host.")
    insecure_skip_verify: bool = Field(default=False, description="Skip TLS verification (avoid).")


class Registries(_Strict):
    """Private registry mirrors and credentials (/etc/rancher/rke2/registries.yaml)."""

    mirrors: dict[str, list[Annotated[str, StringConstraints(pattern=r"^https?://")]]] = Field(
        default={}, description="Registry -> endpoints tried in order (`*` for every registry)."
    )
    configs: dict[str, RegistryAuth] = Field(default={}, description="Registry host -> credentials and TLS.")


class HelmChart(_Strict):
    """A HelmChart resource in the servers' manifests directory: the cluster installs the chart itself."""

    name: Name = Field(description="Resource name (file gpuaas-NAME.yaml).")
    chart: str = Field(description="Chart name (with `repo`) or URL.")
    repo: str | None = Field(default=None, description="Chart repository URL.")
    version: str | None = Field(default=None, description="Chart version, pinned.")
    target_namespace: Name = Field(default="kube-system", description="Namespace the release goes to.")
    create_namespace: bool = Field(default=True, description="Create the target namespace.")
    values: dict[str, Any] = Field(default={}, description="Chart values (valuesContent).")


class HelmChartConfig(_Strict):
    """A HelmChartConfig resource: values for a chart RKE2 ships (rke2-canal, rke2-ingress-nginx, ...)."""

    name: Name = Field(description="The packaged chart's name.")
    values: dict[str, Any] = Field(description="Values merged over the packaged chart's.")


def _checked(options: dict[str, Any], known: frozenset[str], kind: str) -> dict[str, Any]:
    problems = []
    for key in options:
        if key in MANAGED_OPTIONS:
            problems.append(f"'{key}' is written by the role from the profile; set it there")
        elif key not in known:
            problems.append(f"'{key}' is not a documented `rke2 {kind}` option")
    if problems:
        raise ValueError("; ".join(problems))
    return options


class Rke2Settings(_Strict):
    """RKE2 on `rke2_servers` and `rke2_agents`: the cluster layer (profile `roles.rke2`), the group
    layer (`server_options`, `agent_options`) and the host layer (a host's `roles.rke2`)."""

    install_method: Literal["tarball", "script"] = Field(
        default="tarball",
        description="`tarball`: the pinned release tarball, checksum file and images (air-gap style); "
        "`script`: the official install script with INSTALL_RKE2_VERSION pinned (connected sites).",
    )
    artifact: str = Field(default="rke2", description="Artifact: rke2.linux-amd64.tar.gz (its version is RKE2's).")
    checksums_artifact: str = Field(default="rke2-checksums", description="Artifact: sha256sum-amd64.txt.")
    images_artifact: str | None = Field(
        default="rke2-images", description="Artifact: rke2-images.linux-amd64.tar.zst (None: pull from registries)."
    )
    script_url: str = Field(default="https://get.rke2.io", description="Install script (`script` method).")
    cni: Literal["canal", "calico", "cilium", "none"] = Field(default="canal", description="The CNI.")
    multus: bool = Field(default=False, description="Multus in front of the CNI (several networks per pod).")
    cis: bool = Field(default=False, description="CIS profile: etcd user, kernel parameters, protect-kernel-defaults.")
    node_labels: list[Label] = Field(default=[], description="Labels on every node (plus gpu, ring, host labels).")
    node_taints: list[Taint] = Field(default=[], description="Taints on the nodes this layer covers.")
    gpu_taint: bool = Field(default=False, description="Taint GPU nodes nvidia.com/gpu=present:NoSchedule.")
    etcd_snapshot_schedule: str = Field(default="0 */6 * * *", description="etcd snapshot cron schedule.")
    etcd_snapshot_retention: int = Field(default=12, ge=1, description="etcd snapshots kept on each server.")
    etcd_s3: bool = Field(default=False, description="Also send etcd snapshots to the profile's backup target.")
    etcd_s3_folder: str = Field(default="etcd", description="Folder in the backup bucket for etcd snapshots.")
    registries: Registries = Field(default_factory=Registries, description="Private registries.")
    server_options: dict[str, Any] = Field(default={}, description="More `rke2 server` options (validated).")
    agent_options: dict[str, Any] = Field(default={}, description="More `rke2 agent` options (validated).")
    helm_charts: list[HelmChart] = Field(default=[], description="HelmChart resources the servers apply.")
    helm_chart_configs: list[HelmChartConfig] = Field(default=[], description="HelmChartConfig resources.")
    kubeconfig_via_address: bool = Field(
        default=False, description="Point the fetched kubeconfig at the first server's address, not the API name."
    )
    drain_timeout: int = Field(default=300, ge=10, description="Seconds a drain may take (PodDisruptionBudgets).")
    drain_fallback: Literal["stop", "continue"] = Field(
        default="stop",
        description="When a drain times out: `stop` the rollout, or `continue` with the node cordoned (reported).",
    )
    ready_timeout: int = Field(default=600, ge=30, description="Seconds to wait for the API and a node to be Ready.")

    @field_validator("server_options")
    @classmethod
    def _server_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        return _checked(options, SERVER_OPTIONS, "server")

    @field_validator("agent_options")
    @classmethod
    def _agent_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        return _checked(options, AGENT_OPTIONS, "agent")

    def required_artifacts(self) -> dict[str, str]:
        """Setting name -> the artifact it names, for the artifacts the install method uses."""
        if self.install_method == "script":
            return {"artifact": self.artifact}
        names = {"artifact": self.artifact, "checksums_artifact": self.checksums_artifact}
        return names | ({"images_artifact": self.images_artifact} if self.images_artifact else {})
