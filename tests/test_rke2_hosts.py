"""roles/rke2 on the local hosts with the RKE2 double's release (tests/doubles/rke2): local-server as
the server, local-gpu-1 as the GPU agent. The double keeps RKE2's contract: it reads config.yaml,
writes the node token and rke2.yaml, answers 9345 and /readyz, and an agent joins over the network and
fails on a wrong token."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from gpuaas.profile import REPO_ROOT
from gpuaas.secrets import resolve
from roles.rke2.checks import nodes_listing
from tests.doubles.rke2 import release_inventory
from tests.local_variant import converge, on_server

pytestmark = pytest.mark.hosts
NODES_LISTING = nodes_listing()
VERSION = "v0.0.1+double1"


@pytest.fixture(scope="module")
def cluster(local_hosts, tmp_path_factory):
    directory = tmp_path_factory.mktemp("rke2")
    path = release_inventory(directory, VERSION)
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
    chart = on_server("cat /var/lib/rancher/rke2/server/manifests/gpuaas-gpu-operator.yaml")
    assert "kind: HelmChart" in chart and "targetNamespace: gpu-operator" in chart


def test_tokens_never_appear_in_output_or_diff(cluster, local_hosts):
    import subprocess

    on_agent("rm -f /etc/rancher/rke2/gpuaas-token")
    command = ["pyinfra", "-y", "--diff", "-vvv", str(cluster["inventory"]), "deploys/cluster.py"]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=600,
                            env={**os.environ, **cluster["env"]})  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    for reference in (local_hosts.cluster.token, local_hosts.cluster.agent_token):
        assert resolve(local_hosts, reference).reveal() not in result.stdout + result.stderr
    assert (
        on_agent("cat /etc/rancher/rke2/gpuaas-token") == resolve(local_hosts, local_hosts.cluster.agent_token).reveal()
    )
    assert "local-gpu-1=True" in on_server(NODES_LISTING)


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
    upgraded = release_inventory(tmp_path, newer)
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


def test_remove_node_refuses_without_confirmation_then_drains_deletes_and_uninstalls(cluster):
    import subprocess

    def remove(confirm: str | None) -> subprocess.CompletedProcess:
        env = {**os.environ, **cluster["env"], "GPUAAS_NODES": "local-gpu-1"}
        env.pop("GPUAAS_CONFIRM", None)
        env |= {"GPUAAS_CONFIRM": confirm} if confirm else {}
        command = ["pyinfra", "-y", "--json", str(cluster["inventory"]), "deploys/remove_node.py"]
        return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=600, env=env)

    refused = remove(None)
    assert refused.returncode != 0
    assert "refused without GPUAAS_CONFIRM='remove-node local local-gpu-1'" in refused.stdout + refused.stderr
    assert "local-gpu-1=True" in on_server(NODES_LISTING)
    done = remove("remove-node local local-gpu-1")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "local-gpu-1" not in on_server(NODES_LISTING)
    events = on_server("cat /var/lib/rancher/rke2/server/double.log")
    assert "drain local-gpu-1" in events and "delete local-gpu-1" in events
    assert "delete-secret local-gpu-1.node-password.rke2" in events
    assert on_agent("test -e /usr/local/bin/rke2 || echo gone").strip() == "gone"
    again = remove("remove-node local local-gpu-1")
    assert again.returncode == 0 and json.loads(again.stdout)["results"]["totals"]["success"] == 0
