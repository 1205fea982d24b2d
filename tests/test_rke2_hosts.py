"""roles/rke2 on the local hosts with the RKE2 double's release (tests/doubles/rke2): local-server as
the server, local-gpu-1 as the GPU agent. The double keeps RKE2's contract: it reads config.yaml,
makes the cluster CA and writes the secure tokens and rke2.yaml, answers 9345 (/cacerts, the join) and
/readyz, and an agent joins over the network, refuses a server whose CA is not its token's and fails
on a wrong token."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import pytest
import yaml

from gpuaas.profile import REPO_ROOT
from gpuaas.secrets import resolve
from roles.rke2.checks import nodes_listing
from tests.doubles.rke2 import SETTINGS, release_inventory
from tests.local_variant import converge, on_server, packet_item, read_back

pytestmark = pytest.mark.hosts
NODES_LISTING = nodes_listing()
VERSION = "v0.0.1+double1"
SERVER_CA = "/var/lib/rancher/rke2/server/tls/server-ca.crt"
MANIFESTS = "/var/lib/rancher/rke2/server/manifests"
DROP_IN = "/etc/rancher/rke2/config.yaml.d/50-gpuaas-etcd-s3.yaml"
REGISTRIES = "/etc/rancher/rke2/registries.yaml"
#: Settings whose files the role must take back when they are turned off.
OPTIONAL = {
    "etcd_s3": True,
    "registries": {"mirrors": {"docker.io": ["https://mirror.local.gpuaas.test"]}},
    "helm_charts": [
        *SETTINGS["helm_charts"],
        {"name": "extra", "chart": "extra", "repo": "https://charts.example.com", "version": "1.0.0"},
    ],
}


@pytest.fixture(scope="module")
def cluster(local_hosts, tmp_path_factory):
    directory = tmp_path_factory.mktemp("rke2")
    path = release_inventory(directory, VERSION)
    kubeconfig = directory / "kube" / "config"
    kubeconfig.parent.mkdir()
    mine = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "mine",
        "clusters": [{"name": "mine", "cluster": {"server": "https://x:6443"}}],
        "users": [{"name": "mine", "user": {"token": "t"}}],
        "contexts": [{"name": "mine", "context": {"cluster": "mine", "user": "mine"}}],
    }
    kubeconfig.write_text(yaml.safe_dump(mine))
    env = {"KUBECONFIG": str(kubeconfig)}
    first = converge(path, "deploys/cluster.py", env)
    yield {"inventory": path, "kubeconfig": kubeconfig, "env": env, "first": first}
    for name in ("local-server", "local-gpu-1"):
        subprocess_run(name, "test -x /usr/local/bin/rke2-uninstall.sh && /usr/local/bin/rke2-uninstall.sh; true")


def subprocess_run(name: str, command: str) -> None:
    subprocess.run(["docker", "exec", name, "sh", "-c", command], capture_output=True, check=False)


def on_agent(command: str) -> str:
    return subprocess.run(
        ["docker", "exec", "local-gpu-1", "sh", "-c", command], capture_output=True, text=True, check=True
    ).stdout


def test_the_agent_joins_the_server_and_both_are_ready(cluster):
    assert cluster["first"]["error"] == 0
    nodes = json.loads(
        on_server("/var/lib/rancher/rke2/bin/kubectl --kubeconfig /etc/rancher/rke2/rke2.yaml get nodes -o json")
    )["items"]
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


def test_the_readback_shows_the_pinned_version_on_both_nodes_and_every_node_ready(cluster):
    packet = read_back(cluster["inventory"])
    server, agent = packet_item(packet, "RKE2"), packet_item(packet, "RKE2", "local-gpu-1")
    assert (server.layer.value, server.status.value, agent.status.value) == ("control plane", "ok", "ok")
    assert server.message == f"rke2 {VERSION}, every node ready" and agent.message == f"rke2 {VERSION}"
    assert server.pinned and server.observed["api_ready"] is True
    assert {name: node["ready"] for name, node in server.observed["nodes"].items()} == {
        "local-server": True,
        "local-gpu-1": True,
    }


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
    assert holds_secure_agent_token(local_hosts)
    assert "server: https://172.30.77.10:9345" in on_agent("cat /etc/rancher/rke2/config.yaml")
    chart = on_server("cat /var/lib/rancher/rke2/server/manifests/gpuaas-podinfo.yaml")
    assert "kind: HelmChart" in chart and "targetNamespace: apps" in chart


def ca_sha256() -> str:
    return on_server(f"sha256sum {SERVER_CA}").split()[0]


def holds_secure_agent_token(profile) -> bool:
    """The agent's token file holds RKE2's secure agent token for the server's CA (compared by digest,
    so that a failure never prints the secret)."""
    wanted = f"K10{ca_sha256()}::node:{resolve(profile, profile.cluster.agent_token).reveal()}"
    held = on_agent("sha256sum < /etc/rancher/rke2/gpuaas-token").split()[0]
    return held == hashlib.sha256(wanted.encode()).hexdigest()


def test_the_agent_holds_the_secure_token_of_the_servers_ca_and_never_the_cluster_token(cluster, local_hosts):
    assert on_agent("head -c 3 /etc/rancher/rke2/gpuaas-token") == "K10"
    assert holds_secure_agent_token(local_hosts)
    # The same token RKE2 itself writes on the server for agents, which is not the cluster token's.
    server_side = on_server("tr -d '\\n' < /var/lib/rancher/rke2/server/agent-token | sha256sum").split()[0]
    assert on_agent("sha256sum < /etc/rancher/rke2/gpuaas-token").split()[0] == server_side
    cluster_token = on_server("tr -d '\\n' < /var/lib/rancher/rke2/server/token | sha256sum").split()[0]
    assert cluster_token != server_side
    assert on_agent("stat -c '%a %U' /etc/rancher/rke2/gpuaas-token").split() == ["600", "root"]


def test_tokens_never_appear_in_output_or_diff(cluster, local_hosts):
    on_agent("rm -f /etc/rancher/rke2/gpuaas-token")
    command = ["pyinfra", "-y", "--diff", "-vvv", str(cluster["inventory"]), "deploys/cluster.py"]
    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**os.environ, **cluster["env"]},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for reference in (local_hosts.cluster.token, local_hosts.cluster.agent_token):
        assert resolve(local_hosts, reference).reveal() not in result.stdout + result.stderr
    assert holds_secure_agent_token(local_hosts)
    assert "local-gpu-1=True" in on_server(NODES_LISTING)


def test_kubeconfig_is_merged_on_the_controller_without_losing_the_operators_context(cluster):
    config = yaml.safe_load(cluster["kubeconfig"].read_text())
    assert config["current-context"] == "mine"
    assert {c["name"] for c in config["contexts"]} == {"mine", "gpuaas-local"}
    (ours,) = [c for c in config["clusters"] if c["name"] == "gpuaas-local"]
    assert ours["cluster"]["server"] == "https://172.30.77.10:6443"
    assert oct(cluster["kubeconfig"].stat().st_mode & 0o777) == "0o600"


def test_second_converge_changes_nothing(cluster):
    totals = converge(cluster["inventory"], "deploys/cluster.py", cluster["env"])
    assert totals["success"] == 0, totals["changed"]


def test_an_agent_with_a_wrong_token_fails_to_join(cluster):
    on_agent(
        "systemctl stop rke2-agent && cp /etc/rancher/rke2/gpuaas-token /tmp/token.good && "
        "echo wrong > /etc/rancher/rke2/gpuaas-token"
    )
    try:
        result = on_agent("timeout 20 /usr/local/bin/rke2 agent; echo exit=$?")
        assert "token is not valid" in result or "exit=1" in result
        assert "join-refused local-gpu-1" in on_server("cat /var/lib/rancher/rke2/server/double.log")
    finally:
        on_agent("cp /tmp/token.good /etc/rancher/rke2/gpuaas-token && systemctl start rke2-agent")


def test_an_agent_refuses_a_server_whose_ca_is_not_the_one_its_token_names(cluster):
    on_server(": > /var/lib/rancher/rke2/server/double.log")
    # The right secret with another CA's hash, made on the host so the secret stays off any command line.
    on_agent(
        "systemctl stop rke2-agent && cp /etc/rancher/rke2/gpuaas-token /tmp/token.good && umask 077 && "
        f"sed 's/^K10[0-9a-f]*::/K10{'0' * 64}::/' /tmp/token.good > /etc/rancher/rke2/gpuaas-token"
    )
    try:
        result = on_agent("timeout 20 /usr/local/bin/rke2 agent 2>&1; echo exit=$?")
        assert "token CA hash does not match the Cluster CA certificate hash" in result and "exit=1" in result
        assert f"{'0' * 64} != {ca_sha256()}" in result
        # The secret was never sent: the server saw no join at all.
        assert "local-gpu-1" not in on_server("cat /var/lib/rancher/rke2/server/double.log")
    finally:
        on_agent(
            "cp /tmp/token.good /etc/rancher/rke2/gpuaas-token && rm -f /tmp/token.good && systemctl start rke2-agent"
        )


def _invocation(on, unit: str) -> str:
    return on(f"systemctl show -p InvocationID --value {unit}").strip()


def test_turning_settings_off_removes_what_they_wrote_and_leaves_the_operators_files(cluster, tmp_path):
    env = cluster["env"]
    on_server(
        f"mkdir -p {MANIFESTS} /etc/rancher/rke2/config.yaml.d && "
        f"printf 'kind: ConfigMap\\n' > {MANIFESTS}/operator-own.yaml && "
        "printf 'debug: false\\n' > /etc/rancher/rke2/config.yaml.d/90-operator.yaml"
    )
    on = release_inventory(tmp_path / "on", VERSION, OPTIONAL)
    assert converge(on, "deploys/cluster.py", env)["error"] == 0
    assert on_server(f"stat -c '%a %U' {DROP_IN} {REGISTRIES}").split() == ["600", "root", "600", "root"]
    assert on_agent(f"stat -c '%a' {REGISTRIES}").strip() == "600"
    assert "kind: HelmChart" in on_server(f"cat {MANIFESTS}/gpuaas-extra.yaml")
    totals = converge(on, "deploys/cluster.py", env)
    assert totals["success"] == 0, totals["changed"]

    # A manifest alone: the server applies manifests while it runs, so it is not restarted.
    server_run = _invocation(on_server, "rke2-server")
    on_server(": > /var/lib/rancher/rke2/server/double.log")
    fewer = release_inventory(tmp_path / "fewer", VERSION, OPTIONAL | {"helm_charts": SETTINGS["helm_charts"]})
    assert converge(fewer, "deploys/cluster.py", env)["error"] == 0
    assert on_server(f"test -e {MANIFESTS}/gpuaas-extra.yaml || echo gone").strip() == "gone"
    events = on_server("cat /var/lib/rancher/rke2/server/double.log")
    assert "delete-manifest gpuaas-extra.yaml" in events and "delete-addon gpuaas-extra" in events
    assert _invocation(on_server, "rke2-server") == server_run

    # Everything off: the drop-in and registries.yaml go (RKE2 reads them at start: it restarts).
    agent_run = _invocation(on_agent, "rke2-agent")
    off = cluster["inventory"]
    assert converge(off, "deploys/cluster.py", env)["error"] == 0
    assert on_server(f"ls {DROP_IN} {REGISTRIES} 2>/dev/null; true").strip() == ""
    assert on_agent(f"ls {REGISTRIES} 2>/dev/null; true").strip() == ""
    assert _invocation(on_server, "rke2-server") != server_run and _invocation(on_agent, "rke2-agent") != agent_run
    assert "private-registry" not in on_server("cat /etc/rancher/rke2/config.yaml")
    # The operator's own manifest and drop-in, the manifest still configured and roles/gpu_stack's, stay.
    assert on_server(f"ls {MANIFESTS}").split() == [
        "gpuaas-gpu-operator.yaml",
        "gpuaas-podinfo.yaml",
        "operator-own.yaml",
    ]
    assert on_server("cat /etc/rancher/rke2/config.yaml.d/90-operator.yaml") == "debug: false\n"
    totals = converge(off, "deploys/cluster.py", env)
    assert totals["success"] == 0, totals["changed"]
    # And back on: the same files again, then nothing to do.
    assert converge(on, "deploys/cluster.py", env)["error"] == 0
    assert on_server(f"ls {DROP_IN} {REGISTRIES} {MANIFESTS}/gpuaas-extra.yaml").split() == [
        DROP_IN,
        REGISTRIES,
        f"{MANIFESTS}/gpuaas-extra.yaml",
    ]
    totals = converge(on, "deploys/cluster.py", env)
    assert totals["success"] == 0, totals["changed"]
    assert converge(off, "deploys/cluster.py", env)["error"] == 0
    on_server(f"rm -f {MANIFESTS}/operator-own.yaml /etc/rancher/rke2/config.yaml.d/90-operator.yaml")
    assert "local-gpu-1=True" in on_server(NODES_LISTING)


def test_an_install_script_whose_sha256_is_not_the_pin_is_refused_before_anything_runs(cluster, tmp_path):
    path = release_inventory(tmp_path, VERSION, {"install_method": "script"})
    profile = yaml.safe_load((tmp_path / "local.yml").read_text())
    pinned = profile["artifacts"]["rke2-install-script"]["sha256"]
    profile["artifacts"]["rke2-install-script"]["sha256"] = "0" * 64
    (tmp_path / "local.yml").write_text(yaml.safe_dump(profile))
    command = ["pyinfra", "-y", str(path), "deploys/cluster.py"]
    refused = subprocess.run(
        command,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, **cluster["env"]},
    )
    assert refused.returncode != 0
    assert (
        f"artifacts.rke2-install-script: install.sh has sha256 {pinned}, the profile pins {'0' * 64}; "
        "refusing to install it"
    ) in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
    staged = f"/var/lib/gpuaas/rke2/{VERSION}/install.sh"
    assert on_server(f"test -e {staged} || echo absent").strip() == "absent"
    assert on_agent(f"test -e {staged} || echo absent").strip() == "absent"


def test_upgrade_goes_server_first_then_agents_drained_and_refuses_a_downgrade(cluster, tmp_path):
    newer = "v0.0.2+double1"
    upgraded = release_inventory(tmp_path, newer)
    on_server(": > /var/lib/rancher/rke2/server/double.log")
    totals = converge(upgraded, "deploys/upgrade.py", cluster["env"])
    assert totals["error"] == 0 and totals["success"] > 0
    nodes = json.loads(
        on_server("/var/lib/rancher/rke2/bin/kubectl --kubeconfig /etc/rancher/rke2/rke2.yaml get nodes -o json")
    )["items"]
    assert {n["metadata"]["name"]: n["status"]["nodeInfo"]["kubeletVersion"] for n in nodes} == {
        "local-server": newer,
        "local-gpu-1": newer,
    }
    assert not any(n["spec"]["unschedulable"] for n in nodes)
    events = [line.split(" ", 1)[1] for line in on_server("cat /var/lib/rancher/rke2/server/double.log").splitlines()]
    order = [
        "snapshot pre-upgrade-v0-0-2-double1",
        "cordon local-server",
        "start server local-server " + newer,
        "uncordon local-server",
        "drain local-gpu-1",
        "join local-gpu-1 agent " + newer,
        "uncordon local-gpu-1",
    ]
    positions = [next(i for i, event in enumerate(events) if event.startswith(step)) for step in order]
    assert positions == sorted(positions), events
    totals = converge(upgraded, "deploys/upgrade.py", cluster["env"])
    assert totals["success"] == 0, totals["changed"]
    plan = json.loads((REPO_ROOT / "build" / "local" / "upgrade-plan.json").read_text())
    assert plan["target"] == newer and plan["batches"] == []

    downgrade = subprocess.run(
        ["pyinfra", "-y", str(cluster["inventory"]), "deploys/upgrade.py"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert downgrade.returncode != 0
    assert (
        "run a newer RKE2 than the pinned v0.0.1+double1; refusing to downgrade" in downgrade.stderr + downgrade.stdout
    )


def test_remove_node_refuses_without_confirmation_then_drains_deletes_and_uninstalls(cluster):
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


def test_the_pinned_install_script_installs_a_node_from_the_verified_files_and_it_joins(cluster, tmp_path):
    # After the removal above the agent has no RKE2: the script installs it afresh, the server is upgraded.
    newer = "v0.0.3+double1"
    path = release_inventory(tmp_path, newer, {"install_method": "script"})
    assert converge(path, "deploys/cluster.py", cluster["env"])["error"] == 0
    staged = f"/var/lib/gpuaas/rke2/{newer}"
    assert f"installed {newer} agent from {staged}" in on_agent("cat /var/lib/rancher/rke2/install-double.log")
    assert f"installed {newer} server from {staged}" in on_server("cat /var/lib/rancher/rke2/install-double.log")
    assert newer in on_agent("/usr/local/bin/rke2 --version")
    listing = on_server(NODES_LISTING)
    assert "local-gpu-1=True" in listing and "local-server=True" in listing
    prefix = f"K10{ca_sha256()}::node:"
    assert on_agent(f"head -c {len(prefix)} /etc/rancher/rke2/gpuaas-token") == prefix
    totals = converge(path, "deploys/cluster.py", cluster["env"])
    assert totals["success"] == 0, totals["changed"]
