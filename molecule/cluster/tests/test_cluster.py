"""Verify the RKE2 cluster the scenario built and upgraded, through the RKE2 double's API and event log."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from gpuaas.profile import load_profile
from tests.lane import lane_host

PROFILE = load_profile("local")
SERVER = lane_host(PROFILE, "local-server")
AGENT = lane_host(PROFILE, "local-gpu-1")
KUBECTL = "/var/lib/rancher/rke2/bin/kubectl --kubeconfig /etc/rancher/rke2/rke2.yaml"
UPGRADED = "v0.0.2+double1"


def nodes() -> dict[str, dict]:
    return {n["metadata"]["name"]: n for n in json.loads(SERVER.check_output(f"{KUBECTL} get nodes -o json"))["items"]}


def test_both_nodes_joined_ready_at_the_upgraded_version_and_schedulable():
    current = nodes()
    assert set(current) == {"local-server", "local-gpu-1"}
    for node in current.values():
        assert node["status"]["nodeInfo"]["kubeletVersion"] == UPGRADED
        assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"
        assert not node["spec"]["unschedulable"]


def test_units_run_from_the_upgraded_release():
    assert SERVER.service("rke2-server").is_running and SERVER.service("rke2-server").is_enabled
    assert AGENT.service("rke2-agent").is_running and AGENT.service("rke2-agent").is_enabled
    assert UPGRADED in AGENT.check_output("/usr/local/bin/rke2 --version")


def test_upgrade_order_snapshot_server_then_agent_each_cordoned_and_uncordoned():
    events = [
        line.split(" ", 1)[1]
        for line in SERVER.file("/var/lib/rancher/rke2/server/double.log").content_string.splitlines()
    ]
    steps = [
        "snapshot pre-upgrade",
        "cordon local-server",
        f"start server local-server {UPGRADED}",
        "uncordon local-server",
        "cordon local-gpu-1",
        "drain local-gpu-1",
        f"join local-gpu-1 agent {UPGRADED}",
        "uncordon local-gpu-1",
    ]
    positions = [next(i for i, event in enumerate(events) if event.startswith(step)) for step in steps]
    assert positions == sorted(positions), events


def test_kubeconfig_context_points_at_the_server():
    config = yaml.safe_load(Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "kubeconfig").read_text())
    (cluster,) = [c["cluster"] for c in config["clusters"] if c["name"] == "gpuaas-local"]
    assert cluster["server"] == "https://172.30.77.10:6443"
    assert "gpuaas-local" in {c["name"] for c in config["contexts"]}


def test_tokens_stay_out_of_config_and_private():
    assert "token:" not in SERVER.file("/etc/rancher/rke2/config.yaml").content_string
    token = AGENT.file("/etc/rancher/rke2/gpuaas-token")
    assert token.mode == 0o600 and token.user == "root"


def test_the_agent_joins_with_the_secure_token_that_names_the_servers_ca():
    ca_sha256 = SERVER.check_output("sha256sum /var/lib/rancher/rke2/server/tls/server-ca.crt").split()[0]
    prefix = f"K10{ca_sha256}::node:"
    # Only the prefix is read back, so that a failure never prints the secret.
    assert AGENT.check_output(f"head -c {len(prefix)} /etc/rancher/rke2/gpuaas-token") == prefix
