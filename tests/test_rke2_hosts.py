"""roles/rke2 on the local hosts with the RKE2 double's release (tests/doubles/rke2): local-server as
the server, local-gpu-1 as the GPU agent. The double keeps RKE2's contract: it reads config.yaml,
writes the node token and rke2.yaml, answers 9345 and /readyz, and an agent joins over the network and
fails on a wrong token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gpuaas.profile import REPO_ROOT
from gpuaas.secrets import resolve
from tests.doubles.rke2 import build_release
from tests.local_variant import converge, inventory, on_server, pin

pytestmark = pytest.mark.hosts
RELEASES = "https://github.com/rancher/rke2/releases/download"
VERSION = "v0.0.1+double1"


def release_pins(directory: Path, version: str) -> dict[str, dict]:
    files = build_release(directory, version)
    names = {"artifact": "rke2", "checksums_artifact": "rke2-checksums", "images_artifact": "rke2-images"}
    return {names[setting]: pin(names[setting], path, version, f"{RELEASES}/{version}/{path.name}")
            for setting, path in files.items()}  # fmt: skip


@pytest.fixture(scope="module")
def cluster(local_hosts, tmp_path_factory):
    directory = tmp_path_factory.mktemp("rke2")
    rke2 = {"kubeconfig_via_address": True, "gpu_taint": True, "node_labels": ["gpuaas.io/tier=test"]}
    path = inventory(directory, release_pins(directory, VERSION), {}, {"rke2": rke2})
    kubeconfig = directory / "kube" / "config"
    kubeconfig.parent.mkdir()
    mine = {"apiVersion": "v1", "kind": "Config", "current-context": "mine",
            "clusters": [{"name": "mine", "cluster": {"server": "https://x:6443"}}],
            "users": [{"name": "mine", "user": {"token": "t"}}],
            "contexts": [{"name": "mine", "context": {"cluster": "mine", "user": "mine"}}]}  # fmt: skip
    kubeconfig.write_text(yaml.safe_dump(mine))
    env = {"KUBECONFIG": str(kubeconfig)}
    first = converge(path, "deploys/cluster.py", env)
    yield {"inventory": path, "kubeconfig": kubeconfig, "env": env, "first": first}
    for name in ("local-server", "local-gpu-1"):
        subprocess_run(name, "test -x /usr/local/bin/rke2-uninstall.sh && /usr/local/bin/rke2-uninstall.sh; true")


def subprocess_run(name: str, command: str) -> None:
    import subprocess

    subprocess.run(["docker", "exec", name, "sh", "-c", command], capture_output=True, check=False)


def on_agent(command: str) -> str:
    import subprocess

    return subprocess.run(["docker", "exec", "local-gpu-1", "sh", "-c", command], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip


def test_the_agent_joins_the_server_and_both_are_ready(cluster):
    assert cluster["first"]["error"] == 0
    nodes = json.loads(on_server("/var/lib/rancher/rke2/bin/kubectl --kubeconfig /etc/rancher/rke2/rke2.yaml "
                                 "get nodes -o json"))["items"]  # fmt: skip
    by_name = {n["metadata"]["name"]: n for n in nodes}
    assert set(by_name) == {"local-server", "local-gpu-1"}
    gpu = by_name["local-gpu-1"]
    assert gpu["status"]["nodeInfo"]["kubeletVersion"] == VERSION
    assert gpu["metadata"]["labels"]["nvidia.com/gpu.present"] == "true"
    assert gpu["metadata"]["labels"]["gpuaas.io/tier"] == "test"
    assert "nvidia.com/gpu=present:NoSchedule" in gpu["spec"]["taints"]
    assert on_agent("systemctl is-active rke2-agent").strip() == "active"
    log = on_server("cat /var/lib/rancher/rke2/server/double.log")
    assert log.index("start server local-server") < log.index("join local-gpu-1 agent")


def test_config_holds_no_token_and_tokens_are_private(cluster, local_hosts):
    config = on_server("cat /etc/rancher/rke2/config.yaml")
    token = resolve(local_hosts, local_hosts.cluster.token).reveal()
    agent_token = resolve(local_hosts, local_hosts.cluster.agent_token).reveal()
    assert token not in config and agent_token not in config
    assert "token-file: /etc/rancher/rke2/gpuaas-token" in config
    assert on_server("stat -c '%a %U' /etc/rancher/rke2/gpuaas-token /etc/rancher/rke2/config.yaml").split() == [
        "600",
        "root",
        "600",
        "root",
    ]
    assert on_agent("cat /etc/rancher/rke2/gpuaas-token") == agent_token
    assert "server: https://172.30.77.10:9345" in on_agent("cat /etc/rancher/rke2/config.yaml")


def test_kubeconfig_is_merged_on_the_controller_without_losing_the_operators_context(cluster):
    config = yaml.safe_load(cluster["kubeconfig"].read_text())
    assert config["current-context"] == "mine"
    assert {c["name"] for c in config["contexts"]} == {"mine", "gpuaas-local"}
    (ours,) = [c for c in config["clusters"] if c["name"] == "gpuaas-local"]
    assert ours["cluster"]["server"] == "https://172.30.77.10:6443"
    assert oct(cluster["kubeconfig"].stat().st_mode & 0o777) == "0o600"


def test_second_converge_changes_nothing(cluster):
    assert converge(cluster["inventory"], "deploys/cluster.py", cluster["env"])["success"] == 0


def test_an_agent_with_a_wrong_token_fails_to_join(cluster):
    on_agent("systemctl stop rke2-agent && cp /etc/rancher/rke2/gpuaas-token /tmp/token.good && "
             "echo wrong > /etc/rancher/rke2/gpuaas-token")  # fmt: skip
    try:
        result = on_agent("timeout 20 /usr/local/bin/rke2 agent; echo exit=$?")
        assert "token is not valid" in result or "exit=1" in result
        assert "join-refused local-gpu-1" in on_server("cat /var/lib/rancher/rke2/server/double.log")
    finally:
        on_agent("cp /tmp/token.good /etc/rancher/rke2/gpuaas-token && systemctl start rke2-agent")


def test_upgrade_goes_server_first_then_agents_drained_and_refuses_a_downgrade(cluster, tmp_path):
    newer = "v0.0.2+double1"
    rke2 = {"kubeconfig_via_address": True, "gpu_taint": True, "node_labels": ["gpuaas.io/tier=test"]}
    upgraded = inventory(tmp_path, release_pins(tmp_path, newer), {}, {"rke2": rke2})
    on_server(": > /var/lib/rancher/rke2/server/double.log")
    totals = converge(upgraded, "deploys/upgrade.py", cluster["env"])
    assert totals["error"] == 0 and totals["success"] > 0
    nodes = json.loads(on_server("/var/lib/rancher/rke2/bin/kubectl --kubeconfig /etc/rancher/rke2/rke2.yaml "
                                 "get nodes -o json"))["items"]  # fmt: skip
    assert {n["metadata"]["name"]: n["status"]["nodeInfo"]["kubeletVersion"] for n in nodes} == {
        "local-server": newer,
        "local-gpu-1": newer,
    }
    assert not any(n["spec"]["unschedulable"] for n in nodes)
    events = [line.split(" ", 1)[1] for line in on_server("cat /var/lib/rancher/rke2/server/double.log").splitlines()]
    order = ["snapshot pre-upgrade-v0-0-2-double1", "cordon local-server", "start server local-server " + newer,
             "uncordon local-server", "drain local-gpu-1", "join local-gpu-1 agent " + newer,
             "uncordon local-gpu-1"]  # fmt: skip
    positions = [next(i for i, event in enumerate(events) if event.startswith(step)) for step in order]
    assert positions == sorted(positions), events
    assert converge(upgraded, "deploys/upgrade.py", cluster["env"])["success"] == 0
    plan = json.loads((REPO_ROOT / "build" / "local" / "upgrade-plan.json").read_text())
    assert plan["target"] == newer and plan["batches"] == []

    import subprocess

    downgrade = subprocess.run(["pyinfra", "-y", str(cluster["inventory"]), "deploys/upgrade.py"], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=False, timeout=300)  # fmt: skip
    assert downgrade.returncode != 0
    assert (
        "run a newer RKE2 than the pinned v0.0.1+double1; refusing to downgrade" in downgrade.stderr + downgrade.stdout
    )
