"""What roles/rke2 writes on a host, computed from the profile (used by the deploy and by render)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from gpuaas.groups import RKE2_SERVERS
from gpuaas.profile import Host, Profile
from gpuaas.secrets import Secret, resolve
from roles.rke2.settings import Rke2Settings

ETC = "/etc/rancher/rke2"
CONFIG = f"{ETC}/config.yaml"
DROP_INS = f"{ETC}/config.yaml.d"
S3_DROP_IN = f"{DROP_INS}/50-gpuaas-etcd-s3.yaml"
REGISTRIES = f"{ETC}/registries.yaml"
TOKEN_FILE = f"{ETC}/gpuaas-token"
AGENT_TOKEN_FILE = f"{ETC}/gpuaas-agent-token"
KUBECONFIG = f"{ETC}/rke2.yaml"
DATA_DIR = "/var/lib/rancher/rke2"
MANIFESTS = f"{DATA_DIR}/server/manifests"
#: The cluster CA: the `/cacerts` a joining node fetches; its sha256 is the K10 part of a secure token.
SERVER_CA = f"{DATA_DIR}/server/tls/server-ca.crt"
IMAGES = f"{DATA_DIR}/agent/images"
KUBECTL = f"{DATA_DIR}/bin/kubectl"
PREFIX = "/usr/local"
PROGRAM = f"{PREFIX}/bin/rke2"
CIS_SYSCTL = "/etc/sysctl.d/60-rke2-cis.conf"
#: The kernel parameters RKE2's CIS profile checks before it starts.
CIS_SYSCTLS = {"vm.overcommit_memory": "1", "vm.panic_on_oom": "0", "kernel.panic": "10", "kernel.panic_on_oops": "1"}
SUPERVISOR_PORT = 9345
API_PORT = 6443
HEADER = "# Managed by gpuaas roles/rke2.\n"
#: Where the role may have written a file it can be told to stop writing. A file there is the role's
#: only when its first line is HEADER, so an operator's own drop-ins and manifests are never touched.
OPTIONAL_FILES = (f"{DROP_INS}/*.yaml", REGISTRIES, CIS_SYSCTL, f"{MANIFESTS}/*.yaml")


def settings_for(profile: Profile, node: Host) -> Rke2Settings:
    return profile.role_settings("rke2", node)


def is_server(node: Host) -> bool:
    return RKE2_SERVERS in node.groups


def kind(node: Host) -> str:
    """`server` or `agent`: the rke2 subcommand, unit and config flavour of the host."""
    return "server" if is_server(node) else "agent"


def first_server(profile: Profile) -> Host:
    """The server that starts the cluster; every other node joins it."""
    return profile.group(RKE2_SERVERS)[0]


def join_url(profile: Profile) -> str:
    return f"https://{first_server(profile).address}:{SUPERVISOR_PORT}"


def _label_value(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", value)[:63].strip("-_.")


def node_labels(profile: Profile, node: Host, settings: Rke2Settings) -> list[str]:
    """The settings' labels, then what the profile says of the host: environment, gpu, ring, its labels."""
    labels = [*settings.node_labels, f"gpuaas.io/environment={profile.name}"]
    if node.gpu is not None:
        labels += [f"{node.gpu.vendor}.com/gpu.present=true", f"gpuaas.io/gpu-count={node.gpu.count}"]
        labels += [f"gpuaas.io/gpu-model={_label_value(node.gpu.model)}"] if node.gpu.model else []
    if node.ring is not None:
        labels.append(f"gpuaas.io/ring={node.ring}")
    labels += [f"{key}={value}" for key, value in sorted(node.labels.items())]
    return labels


def node_taints(node: Host, settings: Rke2Settings) -> list[str]:
    taints = list(settings.node_taints)
    if settings.gpu_taint and node.gpu is not None:
        taints.append(f"{node.gpu.vendor}.com/gpu=present:NoSchedule")
    return taints


def tls_sans(profile: Profile) -> list[str]:
    """The API's names: the profile's API hostname, then every server's name and address."""
    servers = profile.group(RKE2_SERVERS)
    return [str(profile.cluster.api_hostname), *(s.name for s in servers), *(str(s.address) for s in servers)]


def node_config(profile: Profile, node: Host) -> dict[str, Any]:
    """config.yaml of the host as a mapping. It holds no secret: tokens are in files it names."""
    settings = settings_for(profile, node)
    config: dict[str, Any] = {"token-file": TOKEN_FILE}
    if is_server(node):
        config["agent-token-file"] = AGENT_TOKEN_FILE
    if node != first_server(profile):
        config["server"] = join_url(profile)
    config |= {"node-name": node.name, "node-ip": str(node.address)}
    if is_server(node):
        config |= {
            "advertise-address": str(node.address),
            "tls-san": tls_sans(profile),
            "cni": ["multus", settings.cni] if settings.multus else [settings.cni],
            "cluster-cidr": str(profile.network.cluster_cidr),
            "service-cidr": str(profile.network.service_cidr),
            "write-kubeconfig-mode": "0600",
            "etcd-snapshot-schedule-cron": settings.etcd_snapshot_schedule,
            "etcd-snapshot-retention": settings.etcd_snapshot_retention,
        }
    config["node-label"] = node_labels(profile, node, settings)
    if taints := node_taints(node, settings):
        config["node-taint"] = taints
    if settings.cis:
        config["profile"] = "cis"
    if settings.registries.mirrors or settings.registries.configs:
        config["private-registry"] = REGISTRIES
    return config | (settings.server_options if is_server(node) else settings.agent_options)


def dump(data: Any) -> str:
    return HEADER + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def token_files(profile: Profile, node: Host) -> dict[str, Secret]:
    """Token file -> token, for the tokens a node holds as the profile has them: the first server's
    cluster token, and every server's agent token (the one it accepts from agents). A joining node's
    own token-file holds its secure token instead (join_credentials)."""
    if not is_server(node):
        return {}
    files = {AGENT_TOKEN_FILE: resolve(profile, profile.cluster.agent_token)}
    return files | ({TOKEN_FILE: resolve(profile, profile.cluster.token)} if node == first_server(profile) else {})


def join_credentials(profile: Profile, node: Host) -> tuple[str, Secret] | None:
    """RKE2's user and secret of the token a joining node presents: `server` and the cluster token
    for a server, `node` and the agent token for an agent (which never holds the cluster token). None
    for the first server, which starts the cluster."""
    if node == first_server(profile):
        return None
    if is_server(node):
        return "server", resolve(profile, profile.cluster.token)
    return "node", resolve(profile, profile.cluster.agent_token)


def secure_token(ca_sha256: str, user: str, secret: Secret) -> Secret:
    """RKE2's secure token `K10<sha256 of the cluster CA>::USER:SECRET`: the node that holds it checks
    the CA of the server it joins against the hash before it sends the secret."""
    return Secret(f"{user} join token", f"K10{ca_sha256}::{user}:{secret.reveal()}")


def registries(profile: Profile, settings: Rke2Settings) -> Secret | None:
    """registries.yaml, or None when no registry is configured. A Secret: it may hold credentials."""
    if not (settings.registries.mirrors or settings.registries.configs):
        return None
    configs = {}
    for registry, auth in settings.registries.configs.items():
        entry: dict[str, Any] = {}
        if auth.username or auth.password:
            entry["auth"] = {
                "username": auth.username or "",
                "password": resolve(profile, auth.password).reveal() if auth.password else "",
            }
        tls = {"ca_file": auth.ca_file} if auth.ca_file else {}
        tls |= {"insecure_skip_verify": True} if auth.insecure_skip_verify else {}
        if tls:
            entry["tls"] = tls
        configs[registry] = entry
    document = {
        "mirrors": {name: {"endpoint": endpoints} for name, endpoints in settings.registries.mirrors.items()},
        "configs": configs,
    }
    return Secret("registries.yaml", dump(document))


def etcd_s3_drop_in(profile: Profile) -> Secret:
    """Snapshot upload to the profile's backup target. A Secret: it holds the access keys."""
    settings = settings_for(profile, first_server(profile))
    endpoint = profile.backup.endpoint
    options = {
        "etcd-s3": True,
        "etcd-s3-endpoint": f"{endpoint.host}:{endpoint.port}" if endpoint.port else endpoint.host,
        "etcd-s3-bucket": profile.backup.bucket,
        "etcd-s3-folder": settings.etcd_s3_folder,
        "etcd-s3-region": profile.backup.region,
        "etcd-s3-access-key": resolve(profile, profile.backup.access_key_id).reveal(),
        "etcd-s3-secret-key": resolve(profile, profile.backup.secret_access_key).reveal(),
    }
    if endpoint.scheme == "http":
        options["etcd-s3-insecure"] = True
    return Secret("etcd S3 credentials", dump(options))


def manifests(settings: Rke2Settings) -> dict[str, str]:
    """Manifest path -> HelmChart / HelmChartConfig resource the servers apply."""
    documents = {}
    for chart in settings.helm_charts:
        spec: dict[str, Any] = {
            "chart": chart.chart,
            "targetNamespace": chart.target_namespace,
            "createNamespace": chart.create_namespace,
        }
        spec |= {"repo": chart.repo} if chart.repo else {}
        spec |= {"version": chart.version} if chart.version else {}
        if chart.values:
            spec["valuesContent"] = yaml.safe_dump(chart.values, sort_keys=True)
        documents[f"{MANIFESTS}/gpuaas-{chart.name}.yaml"] = dump(
            {
                "apiVersion": "helm.cattle.io/v1",
                "kind": "HelmChart",
                "metadata": {"name": chart.name, "namespace": "kube-system"},
                "spec": spec,
            }
        )
    for config in settings.helm_chart_configs:
        documents[f"{MANIFESTS}/gpuaas-{config.name}-config.yaml"] = dump(
            {
                "apiVersion": "helm.cattle.io/v1",
                "kind": "HelmChartConfig",
                "metadata": {"name": config.name, "namespace": "kube-system"},
                "spec": {"valuesContent": yaml.safe_dump(config.values, sort_keys=True)},
            }
        )
    return documents


def secret_files(profile: Profile, node: Host) -> dict[str, Secret]:
    """The role's optional files that may hold credentials: registries.yaml and (servers) the etcd S3 drop-in."""
    settings = settings_for(profile, node)
    files = {}
    if (registry_file := registries(profile, settings)) is not None:
        files[REGISTRIES] = registry_file
    if is_server(node) and settings.etcd_s3:
        files[S3_DROP_IN] = etcd_s3_drop_in(profile)
    return files


def read_at_start(path: str) -> bool:
    """Whether RKE2 reads `path` only when it starts, so a change to it needs a restart (manifests are
    applied while it runs; the kernel parameters are applied by the role)."""
    return path in (CONFIG, REGISTRIES) or path.startswith(f"{DROP_INS}/")


def rendered_files(profile: Profile, node: Host) -> dict[str, str]:
    """config.yaml, the CIS kernel parameters and (servers) the manifests; never the token,
    registry credentials or S3 keys."""
    settings = settings_for(profile, node)
    files = {CONFIG: dump(node_config(profile, node))}
    if settings.cis:
        files[CIS_SYSCTL] = HEADER + "".join(f"{key} = {value}\n" for key, value in CIS_SYSCTLS.items())
    if is_server(node):
        files |= manifests(settings)
    return files
