"""Typed settings of roles/rke2 (the profile's `roles.rke2`, overridden per host): every default lives here."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from gpuaas.fieldtypes import K8S_LABEL_PREFIX, SecretRef, label_key_problem, label_value_problem
from gpuaas.safetext import AbsolutePath, ArtifactName, safe_text
from roles.rke2.options import AGENT_OPTIONS, SERVER_OPTIONS

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _node_label(text: str) -> str:
    """`text` when it is KEY=VALUE by Kubernetes' label rules (it becomes a `node-label` of config.yaml)."""
    key, equals, value = text.partition("=")
    problem = label_key_problem(key) or label_value_problem(value)
    if not equals or problem:
        raise ValueError(f"a node label is KEY=VALUE, where {problem or 'the = may not be left out'}")
    return text


def _node_taint(text: str) -> str:
    """`text` when it is KEY[=VALUE]:EFFECT by Kubernetes' taint rules (a `node-taint` of config.yaml)."""
    rest, colon, effect = text.rpartition(":")
    if not colon or effect not in TAINT_EFFECTS:
        raise ValueError(f"a node taint is KEY[=VALUE]:EFFECT, with EFFECT one of {', '.join(TAINT_EFFECTS)}")
    key, _, value = rest.partition("=")
    problem = label_key_problem(key) or label_value_problem(value)
    if problem:
        raise ValueError(f"a node taint is KEY[=VALUE]:EFFECT, where {problem}")
    return text


_ENDPOINT_RULE = (
    "a mirror endpoint is an http:// or https:// URL: a host name or IP address, an optional port "
    "and path, without user or password, query, fragment, spaces or line breaks"
)


def _mirror_endpoint(text: str) -> str:
    """`text` when it is a plain http(s) URL of a host: registries.yaml hands it to containerd as it is."""
    if not (text.isascii() and text.isprintable()) or " " in text:
        raise ValueError(_ENDPOINT_RULE)
    try:
        url = urlsplit(text)
        _ = url.port  # raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        raise ValueError(_ENDPOINT_RULE) from None
    if "@" in url.netloc:
        raise ValueError(
            "a mirror endpoint must not carry a user or password (before '@'): give credentials in "
            "registries.configs (username, password: secret:NAME)"
        )
    if url.scheme not in ("http", "https") or "?" in text or "#" in text:
        raise ValueError(_ENDPOINT_RULE)
    if not _is_host(url.hostname or ""):
        raise ValueError(_ENDPOINT_RULE)
    return text


def _is_host(host: str) -> bool:
    """Whether `host` (a URL's host, lower-cased) is an IP address or a DNS name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(K8S_LABEL_PREFIX.fullmatch(host))
    return True


#: `KEY=VALUE` with Kubernetes' rules for label keys and values.
Label = Annotated[str, AfterValidator(_node_label)]
#: `KEY[=VALUE]:EFFECT`: a label key and value, and one of Kubernetes' taint effects.
Taint = Annotated[str, AfterValidator(_node_taint)]
#: An http(s) URL of a registry mirror.
MirrorEndpoint = Annotated[str, AfterValidator(_mirror_endpoint)]
#: A Kubernetes resource name (RFC 1123 label).
Name = Annotated[
    str,
    safe_text(
        r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?",
        "a name of 1 to 63 of a-z, 0-9 and '-', starting and ending with a letter or digit",
    ),
]

#: Options the role writes itself from the profile: setting them by hand would fight the role.
MANAGED_OPTIONS = frozenset(
    {
        "token",
        "token-file",
        "agent-token",
        "agent-token-file",
        "server",
        "node-name",
        "node-ip",
        "advertise-address",
        "tls-san",
        "cni",
        "cluster-cidr",
        "service-cidr",
        "node-label",
        "node-taint",
        "profile",
        "private-registry",
        "write-kubeconfig-mode",
        "etcd-snapshot-schedule-cron",
        "etcd-snapshot-retention",
        "etcd-s3",
        "etcd-s3-endpoint",
        "etcd-s3-bucket",
        "etcd-s3-access-key",
        "etcd-s3-secret-key",
        "etcd-s3-region",
        "etcd-s3-folder",
        "data-dir",
        "config",
    }
)


#: A cron schedule of five fields (minute, hour, day of month, month, day of week).
CronSchedule = Annotated[
    str,
    safe_text(
        r"[0-9*/,-]+( [0-9*/,-]+){4}",
        "a cron schedule of five space-separated fields of digits, '*', '/', ',' and '-'",
    ),
]
#: A folder inside the backup bucket.
BucketFolder = Annotated[
    str,
    safe_text(
        r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*",
        "a folder path of '/'-separated names of letters, digits, '_' and '-'",
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegistryAuth(_Strict):
    """Credentials and TLS for one registry host (registries.yaml `configs`)."""

    username: str | None = Field(default=None, description="User name.")
    password: SecretRef | None = Field(default=None, description="Reference to the password or token.")
    ca_file: AbsolutePath | None = Field(default=None, description="CA bundle on the host (an absolute path).")
    insecure_skip_verify: bool = Field(default=False, description="Skip TLS verification (avoid).")


class Registries(_Strict):
    """Private registry mirrors and credentials (/etc/rancher/rke2/registries.yaml)."""

    mirrors: dict[str, list[MirrorEndpoint]] = Field(
        default={},
        description="Registry -> http(s) endpoint URLs tried in order (`*` for every registry); credentials go in "
        "`configs`, never in a URL.",
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
    # Keys are counted, not quoted: a mistyped key may be a pasted credential.
    problems = []
    for number, key in enumerate(options, start=1):
        if key in MANAGED_OPTIONS:
            problems.append(
                f"key number {number} is an option the role writes from the profile's own "
                "settings (addresses, tokens, labels, taints, CNI, registries, etcd snapshots); set it "
                "there"
            )
        elif key not in known:
            problems.append(
                f"key number {number} is not a documented `rke2 {kind}` option (see RKE2's `rke2 {kind} --help`)"
            )
    if problems:
        raise ValueError("; ".join(problems))
    return options


class Rke2Settings(_Strict):
    """RKE2 on `rke2_servers` and `rke2_agents`: the cluster layer (profile `roles.rke2`), the group
    layer (`server_options`, `agent_options`) and the host layer (a host's `roles.rke2`)."""

    install_method: Literal["tarball", "script"] = Field(
        default="tarball",
        description="`tarball`: the role unpacks the pinned release tarball under /usr/local; `script`: RKE2's "
        "install script, pinned by sha256 like the release, installs the same verified files (no download on "
        "the host).",
    )
    artifact: ArtifactName = Field(
        default="rke2", description="Artifact: rke2.linux-amd64.tar.gz (its version is RKE2's)."
    )
    checksums_artifact: ArtifactName = Field(default="rke2-checksums", description="Artifact: sha256sum-amd64.txt.")
    images_artifact: ArtifactName | None = Field(
        default="rke2-images", description="Artifact: rke2-images.linux-amd64.tar.zst (None: pull from registries)."
    )
    script_artifact: ArtifactName = Field(
        default="rke2-install-script", description="Artifact: RKE2's install.sh (`script` method)."
    )
    cni: Literal["canal", "calico", "cilium", "none"] = Field(default="canal", description="The CNI.")
    multus: bool = Field(default=False, description="Multus in front of the CNI (several networks per pod).")
    cis: bool = Field(default=False, description="CIS profile: etcd user, kernel parameters, protect-kernel-defaults.")
    node_labels: list[Label] = Field(
        default=[],
        description="Labels on every node, KEY=VALUE by Kubernetes' label rules (plus gpu, ring, host labels).",
    )
    node_taints: list[Taint] = Field(
        default=[],
        description="Taints on the nodes this layer covers: KEY[=VALUE]:EFFECT, EFFECT one of NoSchedule, "
        "PreferNoSchedule, NoExecute.",
    )
    gpu_taint: bool = Field(default=False, description="Taint GPU nodes nvidia.com/gpu=present:NoSchedule.")
    etcd_snapshot_schedule: CronSchedule = Field(default="0 */6 * * *", description="etcd snapshot cron schedule.")
    etcd_snapshot_retention: int = Field(default=12, ge=1, description="etcd snapshots kept on each server.")
    etcd_s3: bool = Field(default=False, description="Also send etcd snapshots to the profile's backup target.")
    etcd_s3_folder: BucketFolder = Field(default="etcd", description="Folder in the backup bucket for etcd snapshots.")
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

    @model_validator(mode="before")
    @classmethod
    def _no_unpinned_script(cls, data: Any) -> Any:
        # An old profile's script_url would otherwise read as a bare "unknown key".
        if isinstance(data, dict) and "script_url" in data:
            raise ValueError(
                "script_url is no longer a setting: an install script is never fetched unpinned on a host; pin "
                "RKE2's install.sh under `artifacts` (version, url, sha256) and name it in script_artifact"
            )
        return data

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
        names = {"artifact": self.artifact, "checksums_artifact": self.checksums_artifact}
        names |= {"script_artifact": self.script_artifact} if self.install_method == "script" else {}
        return names | ({"images_artifact": self.images_artifact} if self.images_artifact else {})
