"""roles/rke2: config.yaml for every layer, option validation, secrets kept out of rendered files,
the release's double verification and the kubeconfig merge, without a host."""

from __future__ import annotations

import hashlib

import pytest
import yaml

from gpuaas.artifacts import ArtifactError
from gpuaas.errors import ProfileError
from gpuaas.profile import load_profile, parse_profile
from gpuaas.render import host_files
from roles.rke2.config import CONFIG, MANIFESTS, etcd_s3_drop_in, node_config, registries, settings_for
from roles.rke2.kubeconfig import merged
from roles.rke2.release import verified_release


def test_first_server_starts_the_cluster_and_the_others_join_it():
    prod = load_profile("prod")
    first, second, gpu = prod.host("prod-server-1"), prod.host("prod-server-2"), prod.host("prod-gpu-05")
    assert "server" not in node_config(prod, first)
    assert node_config(prod, second)["server"] == "https://10.40.0.10:9345"
    assert node_config(prod, gpu)["server"] == "https://10.40.0.10:9345"
    assert node_config(prod, first)["tls-san"][0] == "api.gpuaas.example.com"
    assert {"10.40.0.11", "prod-server-3"} <= set(node_config(prod, first)["tls-san"])
    assert "tls-san" not in node_config(prod, gpu) and "agent-token-file" not in node_config(prod, gpu)
    assert node_config(prod, first)["agent-token-file"] == "/etc/rancher/rke2/gpuaas-agent-token"


def test_labels_come_from_gpu_ring_and_host(raw):
    raw["hosts"][1]["labels"] = {"team": "ml"}
    staging = parse_profile(raw, "staging.yml")
    labels = node_config(staging, staging.hosts[1])["node-label"]
    assert "nvidia.com/gpu.present=true" in labels and "team=ml" in labels
    assert "gpuaas.io/environment=staging" in labels


def test_cluster_group_and_host_layers(raw):
    raw.setdefault("roles", {})["rke2"] = {
        "cni": "cilium", "multus": True, "cis": True, "gpu_taint": True, "node_taints": ["dedicated=gpu:NoSchedule"],
        "server_options": {"kube-apiserver-arg": ["audit-log-maxage=30"]},
        "agent_options": {"kubelet-arg": ["max-pods=250"]},
    }  # fmt: skip
    raw["hosts"][1]["roles"] = {"rke2": {"agent_options": {"kubelet-arg": ["max-pods=110"]}}}
    staging = parse_profile(raw, "staging.yml")
    server, agent = node_config(staging, staging.hosts[0]), node_config(staging, staging.hosts[1])
    assert server["cni"] == ["multus", "cilium"] and server["profile"] == "cis"
    assert server["kube-apiserver-arg"] == ["audit-log-maxage=30"] and "kubelet-arg" not in server
    assert agent["kubelet-arg"] == ["max-pods=110"]
    assert agent["node-taint"] == ["dedicated=gpu:NoSchedule", "nvidia.com/gpu=present:NoSchedule"]
    files = host_files(staging, staging.hosts[0].name)
    assert "vm.overcommit_memory = 1" in files["/etc/sysctl.d/60-rke2-cis.conf"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"server_options": {"kube-apiserver-args": []}}, "'kube-apiserver-args' is not a documented `rke2 server`"),
        ({"agent_options": {"tls-san": ["x"]}}, "'tls-san' is written by the role from the profile"),
        ({"agent_options": {"etcd-arg": ["x"]}}, "'etcd-arg' is not a documented `rke2 agent` option"),
        ({"server_options": {"token": "plain"}}, "'token' is written by the role"),
        ({"cni": "flannel"}, "roles.rke2.cni"),
        ({"node_taints": ["bad taint"]}, "roles.rke2.node_taints"),
    ],
)
def test_bad_options_are_refused_with_the_field_and_reason(raw, options, message):
    raw.setdefault("roles", {})["rke2"] = options
    with pytest.raises(ProfileError) as caught:
        parse_profile(raw, "staging.yml")
    assert message in str(caught.value) and "roles.rke2" in str(caught.value)
    assert "plain" not in str(caught.value)


def test_rendered_files_hold_no_secret(raw, monkeypatch):
    monkeypatch.setenv("GPUAAS_STAGING_REGISTRY_PASSWORD", "registry-secret-value")
    raw["secrets"]["registry_password"] = {"env": "GPUAAS_STAGING_REGISTRY_PASSWORD"}
    raw.setdefault("roles", {})["rke2"] = {
        "registries": {"mirrors": {"docker.io": ["https://mirror.example.com"]},
                       "configs": {"mirror.example.com": {"username": "pull", "password": "secret:registry_password"}}},
        "helm_charts": [{"name": "gpu-operator", "chart": "gpu-operator", "version": "v25.3.0",
                         "repo": "https://helm.ngc.nvidia.com/nvidia", "target_namespace": "gpu-operator",
                         "values": {"driver": {"enabled": True}}}],
    }  # fmt: skip
    staging = parse_profile(raw, "staging.yml")
    files = host_files(staging, staging.hosts[0].name)
    assert "registry-secret-value" not in "".join(files.values())
    config = yaml.safe_load(files[CONFIG])
    assert config["private-registry"] == "/etc/rancher/rke2/registries.yaml" and "token" not in config
    chart = yaml.safe_load(files[f"{MANIFESTS}/gpuaas-gpu-operator.yaml"])
    assert chart["kind"] == "HelmChart" and chart["spec"]["version"] == "v25.3.0"
    assert yaml.safe_load(chart["spec"]["valuesContent"]) == {"driver": {"enabled": True}}
    document = registries(staging, settings_for(staging, staging.hosts[0]))
    assert "registry-secret-value" not in repr(document)
    assert yaml.safe_load(document.reveal())["configs"]["mirror.example.com"]["auth"]["password"] == (
        "registry-secret-value"
    )


def test_etcd_snapshots_to_the_backup_target_carry_their_keys_only_in_the_drop_in(monkeypatch):
    local = load_profile("local")
    drop_in = yaml.safe_load(etcd_s3_drop_in(local).reveal())
    assert drop_in["etcd-s3-endpoint"] == "172.30.77.10:8333" and drop_in["etcd-s3-insecure"] is True
    assert drop_in["etcd-s3-bucket"] == local.backup.bucket and drop_in["etcd-s3-access-key"]


def _release(tmp_path, listed_sha: str | None = None):
    tarball = tmp_path / "rke2.linux-amd64.tar.gz"
    tarball.write_bytes(b"tarball")
    digest = hashlib.sha256(b"tarball").hexdigest()
    checksums = tmp_path / "sha256sum-amd64.txt"
    checksums.write_text(f"{listed_sha or digest}  rke2.linux-amd64.tar.gz\n")
    return tarball, checksums, digest


def _pinned(raw, tmp_path, tarball, checksums, digest):
    url = "https://github.com/rancher/rke2/releases/download/v1.30.4%2Brke2r1/"
    raw["artifacts"]["rke2"] = {"version": "v1.30.4+rke2r1", "url": url + tarball.name, "sha256": digest}
    raw["artifacts"]["rke2-checksums"] = {"version": "v1.30.4+rke2r1", "url": url + checksums.name,
                                          "sha256": hashlib.sha256(checksums.read_bytes()).hexdigest()}  # fmt: skip
    raw.setdefault("roles", {})["rke2"] = {"images_artifact": None}
    return parse_profile(raw, "staging.yml")


def test_release_is_checked_against_its_pin_and_its_checksum_file(raw, tmp_path, monkeypatch):
    monkeypatch.setenv("GPUAAS_ARTIFACT_MIRROR", str(tmp_path))
    tarball, checksums, digest = _release(tmp_path)
    staging = _pinned(raw, tmp_path, tarball, checksums, digest)
    assert verified_release(staging, settings_for(staging, staging.hosts[0]))["artifact"] == tarball
    tarball, checksums, digest = _release(tmp_path, listed_sha="f" * 64)
    staging = _pinned(raw, tmp_path, tarball, checksums, digest)
    with pytest.raises(ArtifactError, match="is listed in sha256sum-amd64.txt as f{64}"):
        verified_release(staging, settings_for(staging, staging.hosts[0]))


def test_an_unpinned_release_stops_the_deploy_with_what_to_pin():
    staging = load_profile("staging")
    with pytest.raises(Exception, match="artifacts rke2, rke2-checksums, rke2-images are not pinned"):
        verified_release(staging, settings_for(staging, staging.hosts[0]))


def test_kubeconfig_merge_keeps_the_operators_entries():
    mine = {"apiVersion": "v1", "kind": "Config", "current-context": "mine",
            "clusters": [{"name": "mine", "cluster": {"server": "https://x"}},
                         {"name": "gpuaas-local", "cluster": {"server": "https://old"}}],
            "users": [{"name": "mine", "user": {}}], "contexts": [{"name": "mine", "context": {}}]}  # fmt: skip
    fetched = {"clusters": [{"name": "default", "cluster": {"server": "https://127.0.0.1:6443",
                                                            "certificate-authority-data": "Q0E="}}],
               "users": [{"name": "default", "user": {"client-key-data": "S0VZ"}}]}  # fmt: skip
    result = merged(mine, fetched, "gpuaas-local", "https://10.0.0.1:6443")
    assert result["current-context"] == "mine"
    clusters = {c["name"]: c["cluster"] for c in result["clusters"]}
    assert clusters["mine"] == {"server": "https://x"}
    assert clusters["gpuaas-local"] == {"server": "https://10.0.0.1:6443", "certificate-authority-data": "Q0E="}
    assert merged(None, fetched, "gpuaas-local", "https://10.0.0.1:6443")["current-context"] == "gpuaas-local"


def test_rollout_plan_servers_one_at_a_time_then_rings_within_the_reserve(raw):
    from roles.rke2.upgrade import plan

    prod = load_profile("prod")
    running = {h.name: "v1.30.4+rke2r1" for h in prod.hosts if "data" not in h.groups}
    batches = plan(prod, running, "v1.31.2+rke2r1")
    assert [b.nodes for b in batches[:3]] == [("prod-server-1",), ("prod-server-2",), ("prod-server-3",)]
    assert [b.label for b in batches[3:]] == ["ring 0", "ring 1", "ring 2", "ring 3", "ring 4", "ring 4"]
    assert all(len(b.nodes) <= prod.rollout.reserve for b in batches)
    # A stopped rollout resumes: nodes already at the target are not planned again.
    running.update(
        {"prod-server-1": "v1.31.2+rke2r1", "prod-server-2": "v1.31.2+rke2r1", "prod-gpu-01": "v1.31.2+rke2r1"}
    )
    assert [b.nodes[0] for b in plan(prod, running, "v1.31.2+rke2r1")][:2] == ["prod-server-3", "prod-gpu-02"]


def test_rollout_plan_refuses_a_downgrade_unless_allowed():
    from roles.rke2.upgrade import plan

    staging = load_profile("staging")
    running = {"stg-server-1": "v1.31.2+rke2r1", "stg-gpu-1": "v1.31.2+rke2r1"}
    with pytest.raises(Exception, match="stg-gpu-1, stg-server-1 run a newer RKE2 than the pinned v1.30.4"):
        plan(staging, running, "v1.30.4+rke2r1")
    assert [b.label for b in plan(staging, running, "v1.30.4+rke2r1", allow_downgrade=True)] == [
        "server stg-server-1",
        "ring 0",
    ]


@pytest.mark.parametrize(
    ("nodes", "confirm", "message"),
    [
        ("", None, "name the nodes in GPUAAS_NODES"),
        ("prod-gpu-09", None, "prod-gpu-09 are not cluster nodes of prod"),
        ("prod-data-1", None, "prod-data-1 are not cluster nodes of prod"),
        ("prod-server-1", "remove-node prod prod-server-1", "prod-server-1 is the server the others join"),
        ("prod-gpu-06", None, "refused without GPUAAS_CONFIRM='remove-node prod prod-gpu-06'"),
        ("prod-gpu-06", "remove-node staging prod-gpu-06", "refused without GPUAAS_CONFIRM"),
    ],
)
def test_destructive_node_actions_need_the_exact_confirmation(monkeypatch, nodes, confirm, message):
    from roles.rke2.lifecycle import confirmed_nodes

    monkeypatch.setenv("GPUAAS_NODES", nodes)
    monkeypatch.delenv("GPUAAS_CONFIRM", raising=False)
    if confirm:
        monkeypatch.setenv("GPUAAS_CONFIRM", confirm)
    with pytest.raises(Exception, match=message):
        confirmed_nodes(load_profile("prod"), "remove-node")


def test_confirmed_nodes_are_returned(monkeypatch):
    from roles.rke2.lifecycle import confirmed_nodes

    monkeypatch.setenv("GPUAAS_NODES", "prod-gpu-05, prod-gpu-06")
    monkeypatch.setenv("GPUAAS_CONFIRM", "remove-node prod prod-gpu-05,prod-gpu-06")
    assert confirmed_nodes(load_profile("prod"), "remove-node") == ["prod-gpu-05", "prod-gpu-06"]
