"""roles/rke2: config.yaml for every layer, option validation, secrets kept out of rendered files,
the release's double verification and the kubeconfig merge, without a host."""

from __future__ import annotations

import hashlib

import pytest
import yaml
from pyinfra.api.exceptions import DeployError

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
        "cni": "cilium",
        "multus": True,
        "cis": True,
        "gpu_taint": True,
        "node_taints": ["dedicated=gpu:NoSchedule"],
        "server_options": {"kube-apiserver-arg": ["audit-log-maxage=30"]},
        "agent_options": {"kubelet-arg": ["max-pods=250"]},
    }
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
        ({"server_options": {"kube-apiserver-args": []}}, "key number 1 is not a documented `rke2 server` option"),
        ({"agent_options": {"tls-san": ["x"]}}, "key number 1 is an option the role writes from the profile"),
        ({"agent_options": {"etcd-arg": ["x"]}}, "key number 1 is not a documented `rke2 agent` option"),
        ({"server_options": {"token": "plain"}}, "key number 1 is an option the role writes"),
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


_LABEL_KEY_RULE = "a label key is an optional DNS-subdomain prefix"
_LABEL_VALUE_RULE = "a label value is empty or at most 63 letters"
_EFFECT_RULE = "EFFECT one of NoSchedule, PreferNoSchedule, NoExecute"
_ENDPOINT_RULE = "a mirror endpoint is an http:// or https:// URL"
_PATH_RULE = "must be an absolute path"


@pytest.mark.parametrize(
    ("settings", "path", "rule", "value"),
    [
        # node labels: Kubernetes' rules for keys and values, and KEY=VALUE
        ({"node_labels": ["team=ml\n"]}, "roles.rke2.node_labels[0]", _LABEL_VALUE_RULE, "team=ml"),
        ({"node_labels": ["team=ml\nrogue: 1"]}, "roles.rke2.node_labels[0]", _LABEL_VALUE_RULE, "rogue"),
        ({"node_labels": ["nolabelvalue"]}, "roles.rke2.node_labels[0]", "a node label is KEY=VALUE", "nolabelvalue"),
        ({"node_labels": ["-pool=a"]}, "roles.rke2.node_labels[0]", _LABEL_KEY_RULE, "-pool"),
        ({"node_labels": ["pool.=a"]}, "roles.rke2.node_labels[0]", _LABEL_KEY_RULE, "pool."),
        ({"node_labels": ["Example.COM/pool=a"]}, "roles.rke2.node_labels[0]", _LABEL_KEY_RULE, "Example.COM"),
        ({"node_labels": ["a/b/pool=a"]}, "roles.rke2.node_labels[0]", _LABEL_KEY_RULE, "a/b/pool"),
        ({"node_labels": ["/pool=a"]}, "roles.rke2.node_labels[0]", _LABEL_KEY_RULE, "/pool"),
        ({"node_labels": ["ok=a", "k" * 64 + "=a"]}, "roles.rke2.node_labels[1]", _LABEL_KEY_RULE, "k" * 64),
        ({"node_labels": ["x" * 251 + ".io/pool=a"]}, "roles.rke2.node_labels[0]", _LABEL_KEY_RULE, "x" * 251),
        ({"node_labels": ["pool=" + "v" * 64]}, "roles.rke2.node_labels[0]", _LABEL_VALUE_RULE, "v" * 64),
        ({"node_labels": ["pool=a-"]}, "roles.rke2.node_labels[0]", _LABEL_VALUE_RULE, "a-"),
        ({"node_labels": ["pool=a=b"]}, "roles.rke2.node_labels[0]", _LABEL_VALUE_RULE, "a=b"),
        ({"node_labels": ["pool=$(reboot)"]}, "roles.rke2.node_labels[0]", _LABEL_VALUE_RULE, "reboot"),
        # node taints: label rules for the key and value, and one of the three effects
        ({"node_taints": ["dedicated=gpu:NoSchedule\n"]}, "roles.rke2.node_taints[0]", _EFFECT_RULE, "dedicated"),
        ({"node_taints": ["dedicated=gpu:Sometimes"]}, "roles.rke2.node_taints[0]", _EFFECT_RULE, "Sometimes"),
        ({"node_taints": ["dedicated=gpu"]}, "roles.rke2.node_taints[0]", _EFFECT_RULE, "dedicated"),
        ({"node_taints": ["dedicated=gpu:noschedule"]}, "roles.rke2.node_taints[0]", _EFFECT_RULE, "noschedule"),
        ({"node_taints": ["-dedicated=gpu:NoSchedule"]}, "roles.rke2.node_taints[0]", _LABEL_KEY_RULE, "-dedicated"),
        ({"node_taints": ["Bad.Prefix/gpu:NoExecute"]}, "roles.rke2.node_taints[0]", _LABEL_KEY_RULE, "Bad.Prefix"),
        ({"node_taints": ["dedicated=g pu:NoSchedule"]}, "roles.rke2.node_taints[0]", _LABEL_VALUE_RULE, "g pu"),
        (
            {"node_taints": ["dedicated=" + "g" * 64 + ":NoSchedule"]},
            "roles.rke2.node_taints[0]",
            _LABEL_VALUE_RULE,
            "g" * 64,
        ),
        # registry CA bundle: an absolute path on the host, whole
        (
            {"registries": {"configs": {"registry.example.com": {"ca_file": "/etc/ssl/ca.pem\nrogue"}}}},
            "roles.rke2.registries.configs.registry.example.com.ca_file",
            _PATH_RULE,
            "rogue",
        ),
        (
            {"registries": {"configs": {"registry.example.com": {"ca_file": "etc/ssl/ca.pem"}}}},
            "roles.rke2.registries.configs.registry.example.com.ca_file",
            _PATH_RULE,
            "etc/ssl",
        ),
        (
            {"registries": {"configs": {"registry.example.com": {"ca_file": "/etc/../root/ca.pem"}}}},
            "roles.rke2.registries.configs.registry.example.com.ca_file",
            _PATH_RULE,
            "/root",
        ),
        (
            {"registries": {"configs": {"registry.example.com": {"ca_file": "/etc/ssl/ca pem"}}}},
            "roles.rke2.registries.configs.registry.example.com.ca_file",
            _PATH_RULE,
            "ca pem",
        ),
        # mirror endpoints: http(s), a host, nothing hidden in or after it
        (
            {"registries": {"mirrors": {"docker.io": ["https://mirror.example.com\nrogue: 1"]}}},
            "roles.rke2.registries.mirrors.docker.io[0]",
            _ENDPOINT_RULE,
            "rogue",
        ),
        (
            {"registries": {"mirrors": {"docker.io": ["https://puller:hunter2@mirror.example.com"]}}},
            "roles.rke2.registries.mirrors.docker.io[0]",
            "must not carry a user or password",
            "hunter2",
        ),
        (
            {"registries": {"mirrors": {"docker.io": ["ftp://mirror.example.com"]}}},
            "roles.rke2.registries.mirrors.docker.io[0]",
            _ENDPOINT_RULE,
            "ftp:",
        ),
        (
            {"registries": {"mirrors": {"docker.io": ["https://:5443"]}}},
            "roles.rke2.registries.mirrors.docker.io[0]",
            _ENDPOINT_RULE,
            ":5443",
        ),
        (
            {"registries": {"mirrors": {"docker.io": ["https:///v2/only-a-path"]}}},
            "roles.rke2.registries.mirrors.docker.io[0]",
            _ENDPOINT_RULE,
            "only-a-path",
        ),
        (
            {"registries": {"mirrors": {"docker.io": ["https://mirror.example.com:99999"]}}},
            "roles.rke2.registries.mirrors.docker.io[0]",
            _ENDPOINT_RULE,
            "99999",
        ),
        (
            {"registries": {"mirrors": {"docker.io": ["https://mirror.example.com/v2 rogue"]}}},
            "roles.rke2.registries.mirrors.docker.io[0]",
            _ENDPOINT_RULE,
            "rogue",
        ),
        (
            {"registries": {"mirrors": {"docker.io": ["https://mirror.example.com/?token=hunter2"]}}},
            "roles.rke2.registries.mirrors.docker.io[0]",
            _ENDPOINT_RULE,
            "hunter2",
        ),
        (
            {"registries": {"mirrors": {"docker.io": ["https://mirror_host.example.com"]}}},
            "roles.rke2.registries.mirrors.docker.io[0]",
            _ENDPOINT_RULE,
            "mirror_host",
        ),
        (
            {"registries": {"mirrors": {"docker.io": ["https://mirror.example.com/v2\u00e9"]}}},
            "roles.rke2.registries.mirrors.docker.io[0]",
            _ENDPOINT_RULE,
            "\u00e9",
        ),
        # option keys: counted, never quoted (a mistyped key may be a pasted credential)
        (
            {"server_options": {"ghp_pastedTokenValue123": 1}},
            "roles.rke2.server_options",
            "key number 1 is not a documented `rke2 server` option",
            "ghp_pastedTokenValue123",
        ),
        (
            {"agent_options": {"kubelet-arg": [], "hunter2-secret": 1}},
            "roles.rke2.agent_options",
            "key number 2 is not a documented `rke2 agent` option",
            "hunter2",
        ),
        (
            {"agent_options": {"etcd-s3-secret-key": "x"}},
            "roles.rke2.agent_options",
            "key number 1 is an option the role writes from the profile",
            "etcd-s3-secret-key",
        ),
        (
            {"server_options": {"node-label": ["a=b"]}},
            "roles.rke2.server_options",
            "key number 1 is an option the role writes from the profile",
            "node-label",
        ),
    ],
)
def test_bad_rke2_settings_are_refused_with_the_field_and_rule_without_the_value(raw, settings, path, rule, value):
    raw.setdefault("roles", {})["rke2"] = settings
    with pytest.raises(ProfileError) as caught:
        parse_profile(raw, "staging.yml")
    message = str(caught.value)
    assert f"staging.yml: {path}: " in message and rule in message
    assert value not in message
    assert "pattern" not in message and "Value error" not in message and "Traceback" not in message


def test_a_bad_label_on_a_hosts_own_layer_is_refused_with_that_hosts_path(raw):
    raw["hosts"][1]["roles"] = {"rke2": {"node_labels": ["pool=a\nrogue"]}}
    with pytest.raises(ProfileError) as caught:
        parse_profile(raw, "staging.yml")
    assert f"staging.yml: hosts[1].roles.rke2.node_labels[0]: a node label is KEY=VALUE, where {_LABEL_VALUE_RULE}" in (
        str(caught.value)
    )
    assert "rogue" not in str(caught.value)


_LONGEST_KEY = "p" * 63 + "." + "q" * 189 + "/" + "n" * 63


@pytest.mark.parametrize(
    "label",
    [
        "team=ml",
        "gpuaas.io/pool=a-1",
        "example.com/empty=",
        "A_b.C=Z-9",
        "n" * 63 + "=" + "v" * 63,
        _LONGEST_KEY + "=x",
        "node-role.kubernetes.io/worker=true",
        "9=9",
    ],
)
def test_legal_node_labels_pass_and_reach_the_config(raw, label):
    staging = _with_rke2(raw, {"node_labels": [label]})
    assert label in node_config(staging, staging.hosts[0])["node-label"]


@pytest.mark.parametrize(
    "taint",
    [
        "dedicated=gpu:NoSchedule",
        "nvidia.com/gpu:NoExecute",
        "maintenance=:PreferNoSchedule",
        "example.com/role=build_1.x:NoSchedule",
        _LONGEST_KEY + "=" + "v" * 63 + ":NoExecute",
    ],
)
def test_legal_node_taints_pass_and_reach_the_config(raw, taint):
    staging = _with_rke2(raw, {"node_taints": [taint]})
    assert taint in node_config(staging, staging.hosts[0])["node-taint"]


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://mirror.example.com",
        "https://mirror.example.com:5443/v2/proxy-docker",
        "http://127.0.0.1:5000",
        "http://stg-server-1:5000",
        "https://[fd00::1]:5000",
        "https://registry-1.docker.io/",
    ],
)
def test_legal_mirror_endpoints_and_ca_files_pass_and_reach_registries_yaml(raw, endpoint):
    staging = _with_rke2(
        raw,
        {
            "registries": {
                "mirrors": {"docker.io": [endpoint]},
                "configs": {"mirror.example.com": {"ca_file": "/etc/ssl/certs/registry-ca_1.pem"}},
            }
        },
    )
    document = yaml.safe_load(registries(staging, settings_for(staging, staging.hosts[0])).reveal())
    assert document["mirrors"]["docker.io"]["endpoint"] == [endpoint]
    assert document["configs"]["mirror.example.com"]["tls"]["ca_file"] == "/etc/ssl/certs/registry-ca_1.pem"


def test_documented_options_still_pass(raw):
    staging = _with_rke2(
        raw,
        {
            "server_options": {"kube-apiserver-arg": ["audit-log-maxage=30"], "debug": True},
            "agent_options": {"kubelet-arg": ["max-pods=250"]},
        },
    )
    assert node_config(staging, staging.hosts[0])["kube-apiserver-arg"] == ["audit-log-maxage=30"]


def test_rendered_files_hold_no_secret(raw, monkeypatch):
    monkeypatch.setenv("GPUAAS_STAGING_REGISTRY_PASSWORD", "registry-secret-value")
    raw["secrets"]["registry_password"] = {"env": "GPUAAS_STAGING_REGISTRY_PASSWORD"}
    raw.setdefault("roles", {})["rke2"] = {
        "registries": {
            "mirrors": {"docker.io": ["https://mirror.example.com"]},
            "configs": {"mirror.example.com": {"username": "pull", "password": "secret:registry_password"}},
        },
        "helm_charts": [
            {
                "name": "podinfo",
                "chart": "podinfo",
                "version": "6.7.1",
                "repo": "https://stefanprodan.github.io/podinfo",
                "target_namespace": "apps",
                "values": {"replicaCount": 2},
            }
        ],
    }
    staging = parse_profile(raw, "staging.yml")
    files = host_files(staging, staging.hosts[0].name)
    assert "registry-secret-value" not in "".join(files.values())
    config = yaml.safe_load(files[CONFIG])
    assert config["private-registry"] == "/etc/rancher/rke2/registries.yaml" and "token" not in config
    chart = yaml.safe_load(files[f"{MANIFESTS}/gpuaas-podinfo.yaml"])
    assert chart["kind"] == "HelmChart" and chart["spec"]["version"] == "6.7.1"
    assert yaml.safe_load(chart["spec"]["valuesContent"]) == {"replicaCount": 2}
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
    raw["artifacts"]["rke2-checksums"] = {
        "version": "v1.30.4+rke2r1",
        "url": url + checksums.name,
        "sha256": hashlib.sha256(checksums.read_bytes()).hexdigest(),
    }
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
    mine = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "mine",
        "clusters": [
            {"name": "mine", "cluster": {"server": "https://x"}},
            {"name": "gpuaas-local", "cluster": {"server": "https://old"}},
        ],
        "users": [{"name": "mine", "user": {}}],
        "contexts": [{"name": "mine", "context": {}}],
    }
    fetched = {
        "clusters": [
            {"name": "default", "cluster": {"server": "https://127.0.0.1:6443", "certificate-authority-data": "Q0E="}}
        ],
        "users": [{"name": "default", "user": {"client-key-data": "S0VZ"}}],
    }
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


def test_an_unpinned_install_script_setting_is_refused_with_what_to_do_instead(raw):
    raw.setdefault("roles", {})["rke2"] = {"install_method": "script", "script_url": "https://get.rke2.io"}
    with pytest.raises(ProfileError) as caught:
        parse_profile(raw, "staging.yml")
    message = str(caught.value)
    assert "roles.rke2" in message and "script_url is no longer a setting" in message
    assert "pin RKE2's install.sh under `artifacts`" in message and "Traceback" not in message


def test_the_install_script_is_pinned_by_sha256_like_the_release(raw, tmp_path, monkeypatch):
    monkeypatch.setenv("GPUAAS_ARTIFACT_MIRROR", str(tmp_path))
    tarball, checksums, digest = _release(tmp_path)
    staging = _pinned(raw, tmp_path, tarball, checksums, digest)
    settings = settings_for(staging, staging.hosts[0]).model_copy(update={"install_method": "script"})
    with pytest.raises(Exception, match="artifacts rke2-install-script are not pinned: .* and the install script"):
        verified_release(staging, settings)
    script = tmp_path / "install.sh"
    script.write_text("#!/bin/sh\necho the script that was reviewed\n")
    url = "https://raw.githubusercontent.com/rancher/rke2/v1.30.4%2Brke2r1/install.sh"
    raw["artifacts"]["rke2-install-script"] = {
        "version": "v1.30.4+rke2r1",
        "url": url,
        "sha256": hashlib.sha256(script.read_bytes()).hexdigest(),
    }
    staging = _pinned(raw, tmp_path, tarball, checksums, digest)
    assert verified_release(staging, settings)["script_artifact"] == script
    script.write_text("#!/bin/sh\ncurl -sfL https://example.com/other | sh -\n")
    with pytest.raises(
        ArtifactError,
        match="artifacts.rke2-install-script: install.sh has sha256 [0-9a-f]{64}, the "
        "profile pins [0-9a-f]{64}; refusing to install it",
    ):
        verified_release(staging, settings)


def _with_version(raw, tmp_path, monkeypatch, version: str):
    monkeypatch.setenv("GPUAAS_ARTIFACT_MIRROR", str(tmp_path))
    staging = _pinned(raw, tmp_path, *_release(tmp_path))
    pinned = staging.artifacts["rke2"].model_copy(update={"version": version})
    return staging.model_copy(update={"artifacts": staging.artifacts | {"rke2": pinned}})


@pytest.mark.parametrize(
    "version",
    [
        "v1.30.4+rke2r1;reboot",
        "$(id)",
        "v1.30.4 rke2r1",
        "1.30.4",
        "v1.30.4+rke2r1\n",
        "v1.30.4+rke2r1\nrogue",
        "v1.30+rke2r1",
        "v1.30.4+RKE2R1",
    ],
)
def test_a_release_version_that_is_not_one_is_refused_before_it_reaches_a_shell(raw, tmp_path, monkeypatch, version):
    from roles.rke2.release import release_version

    staging = _with_version(raw, tmp_path, monkeypatch, version)
    with pytest.raises(DeployError) as caught:
        release_version(staging, settings_for(staging, staging.hosts[0]))
    assert "staging.yml: artifacts.rke2.version: is not an RKE2 release version (vMAJOR.MINOR.PATCH+rke2rN" in (
        str(caught.value)
    )
    assert version.strip() not in str(caught.value)


@pytest.mark.parametrize("version", ["v1.30.4+rke2r1", "v1.31.12+rke2r2", "v1.32.0+rke2r10"])
def test_a_release_version_that_is_one_passes(raw, tmp_path, monkeypatch, version):
    from roles.rke2.release import release_version

    staging = _with_version(raw, tmp_path, monkeypatch, version)
    assert release_version(staging, settings_for(staging, staging.hosts[0])) == version


def _with_rke2(raw, settings: dict):
    raw.setdefault("roles", {})["rke2"] = settings
    return parse_profile(raw, "staging.yml")


def test_each_optional_file_is_written_only_while_its_setting_is_on_and_carries_the_roles_mark(raw, monkeypatch):
    from roles.rke2.config import CIS_SYSCTL, HEADER, REGISTRIES, S3_DROP_IN, rendered_files, secret_files

    for name in ("backup_access_key_id", "backup_secret_access_key"):
        monkeypatch.setenv(f"GPUAAS_TEST_{name.upper()}", f"{name}-value")
        raw["secrets"][name] = {"env": f"GPUAAS_TEST_{name.upper()}"}
    on = _with_rke2(
        raw,
        {
            "etcd_s3": True,
            "cis": True,
            "registries": {"mirrors": {"docker.io": ["https://m.example"]}},
            "helm_charts": [{"name": "extra", "chart": "extra"}],
            "helm_chart_configs": [{"name": "rke2-canal", "values": {"a": 1}}],
        },
    )
    server, agent = on.hosts[0], on.hosts[1]
    files = rendered_files(on, server) | {path: s.reveal() for path, s in secret_files(on, server).items()}
    wanted = {
        CIS_SYSCTL,
        REGISTRIES,
        S3_DROP_IN,
        f"{MANIFESTS}/gpuaas-extra.yaml",
        f"{MANIFESTS}/gpuaas-rke2-canal-config.yaml",
    }
    assert wanted <= set(files)
    # The mark is how a later run tells the role's files from an operator's: every optional file has it.
    assert all(files[path].startswith(HEADER) for path in wanted)
    assert S3_DROP_IN not in secret_files(on, agent) and REGISTRIES in secret_files(on, agent)
    assert yaml.safe_load(files[CONFIG])["private-registry"] == REGISTRIES
    off = _with_rke2(raw, {})
    files = set(rendered_files(off, server)) | set(secret_files(off, server))
    assert files == {CONFIG}
    assert "private-registry" not in yaml.safe_load(rendered_files(off, server)[CONFIG])


def test_only_files_rke2_reads_when_it_starts_restart_it():
    from roles.rke2.config import CIS_SYSCTL, DROP_INS, REGISTRIES, S3_DROP_IN, read_at_start

    assert read_at_start(CONFIG) and read_at_start(REGISTRIES) and read_at_start(S3_DROP_IN)
    assert read_at_start(f"{DROP_INS}/60-gpuaas-other.yaml")
    assert not read_at_start(f"{MANIFESTS}/gpuaas-extra.yaml") and not read_at_start(CIS_SYSCTL)


def test_joining_nodes_verify_the_server_with_a_secure_token_and_agents_never_hold_the_cluster_token(monkeypatch):
    from gpuaas.secrets import resolve
    from roles.rke2.config import TOKEN_FILE, join_credentials, secure_token, token_files

    local = load_profile("local")
    server, agent = local.host("local-server"), local.host("local-gpu-1")
    assert join_credentials(local, server) is None and TOKEN_FILE in token_files(local, server)
    user, secret = join_credentials(local, agent)
    assert user == "node" and secret == resolve(local, local.cluster.agent_token)
    assert token_files(local, agent) == {}
    monkeypatch.setenv("GPUAAS_PROD_RKE2_TOKEN", "cluster-token-value")
    monkeypatch.setenv("GPUAAS_PROD_RKE2_AGENT_TOKEN", "agent-token-value")
    prod = load_profile("prod")
    assert join_credentials(prod, prod.host("prod-server-2"))[0] == "server"
    assert TOKEN_FILE not in token_files(prod, prod.host("prod-server-2"))
    token = secure_token("ab" * 32, "node", secret)
    assert token.reveal() == f"K10{'ab' * 32}::node:{secret.reveal()}"
    assert secret.reveal() not in repr(token)


def test_the_optional_files_fact_lists_only_files_that_carry_the_roles_mark(tmp_path):
    import subprocess

    from roles.rke2.config import HEADER, OPTIONAL_FILES
    from roles.rke2.facts import OptionalFiles

    command = OptionalFiles().command()
    assert all(pattern in command for pattern in OPTIONAL_FILES)
    # The same loop over a directory of this machine: the role's file is listed, the operator's is not.
    ours, theirs = tmp_path / "gpuaas-extra.yaml", tmp_path / "operator.yaml"
    ours.write_text(HEADER + "kind: HelmChart\n")
    theirs.write_text("# operator's own\n" + HEADER)
    local = command.replace(f"{MANIFESTS}/*.yaml", f"{tmp_path}/*.yaml")
    output = subprocess.run(["sh", "-c", local], capture_output=True, text=True, check=True).stdout
    assert OptionalFiles().process(output.splitlines()) == [str(ours)]


def test_strings_reach_the_shell_quoted():
    import subprocess

    from roles.rke2.checks import node_ready, wait

    failure = "it's $(touch /tmp/gpuaas-rke2-quoting) `id` not ready"
    result = subprocess.run(["sh", "-c", wait("false", 1, failure)], capture_output=True, text=True, check=False)
    assert result.returncode == 1 and result.stderr.strip() == failure
    assert "= 'v1 $(id)' ]" in node_ready("n1", "v1 $(id)")
