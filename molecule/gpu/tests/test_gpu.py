"""Verify the GPU scenario: the real Debian driver on local-gpu-1, held and reported honestly; nothing on
local-server from the local profile; then the GPU double on local-server in the RKE2 double's cluster."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from gpuaas.profile import load_profile
from tests.lane import lane_host

PROFILE = load_profile("local")
SERVER = lane_host(PROFILE, "local-server")
AGENT = lane_host(PROFILE, "local-gpu-1")
PINNED = PROFILE.role_settings("gpu", PROFILE.host("local-gpu-1")).driver.version
DOUBLE_DIR = Path(os.environ.get("GPUAAS_DOUBLE_DIR", "/nonexistent"))
KUBECTL = "/var/lib/rancher/rke2/bin/kubectl --kubeconfig /etc/rancher/rke2/rke2.yaml"
MANIFEST = "/var/lib/rancher/rke2/server/manifests/gpuaas-gpu-operator.yaml"


def reported(text: str, title: str) -> dict[str, dict]:
    """Host -> what `title` read back there, from a readback run's -v output."""
    found = {}
    for host, body in re.findall(rf"\[(\S+)\]\s+noop: {re.escape(title)}: (\{{.*\}})$", text, re.MULTILINE):
        found[host] = json.loads(body)
    return found


@pytest.fixture(scope="module")
def double_readback() -> str:
    return (DOUBLE_DIR / "readback.txt").read_text()


def test_the_driver_packages_are_the_pinned_ones_and_held():
    listing = AGENT.check_output(
        "dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\\n' nvidia-kernel-dkms nvidia-smi libcuda1 "
        "nvidia-persistenced"
    )
    rows = {line.split()[0]: line.split()[1:] for line in listing.splitlines()}
    for package in ("nvidia-kernel-dkms", "nvidia-smi", "libcuda1"):
        assert rows[package][0].startswith(f"{PINNED}-") and rows[package][1] == "hi", rows[package]
    # Its own release cycle: held on the branch, not at the driver's version.
    assert rows["nvidia-persistenced"][0].startswith("535.") and rows["nvidia-persistenced"][1] == "hi"


def test_apt_is_kept_on_the_branch_and_unattended_upgrades_off_the_driver():
    preferences = AGENT.file("/etc/apt/preferences.d/gpuaas-nvidia").content_string
    assert f"Package: src:nvidia-graphics-drivers\nPin: version {PINNED}-*\nPin-Priority: 1001" in preferences
    # A newer driver is in the archive (bookworm-security), and the pin keeps apt from taking it.
    policy = AGENT.check_output("apt-cache policy nvidia-smi")
    assert re.search(rf"Candidate: {re.escape(PINNED)}-", policy), policy
    assert "non-free" in AGENT.file("/etc/apt/sources.list.d/gpuaas-nvidia.sources").content_string
    assert '"nvidia-";' in AGENT.file("/etc/apt/apt.conf.d/51gpuaas-nvidia-unattended-upgrades").content_string


def test_nouveau_is_blacklisted_and_nvidia_persistenced_enabled():
    assert "blacklist nouveau" in AGENT.file("/etc/modprobe.d/gpuaas-blacklist-nouveau.conf").content_string
    assert AGENT.service("nvidia-persistenced").is_enabled


def test_without_a_gpu_nvidia_smi_cannot_reach_the_driver():
    result = AGENT.run("nvidia-smi")
    assert result.rc == 9 and "couldn't communicate with the NVIDIA driver" in result.stdout


def test_the_host_without_a_gpu_got_no_driver():
    assert not SERVER.package("nvidia-smi").is_installed
    assert not SERVER.file("/etc/apt/preferences.d/gpuaas-nvidia").exists


def test_the_double_host_reads_back_two_h100s_with_a_loaded_open_module(double_readback):
    server = reported(double_readback, "GPU")["local-server"]
    assert server["declared"] == 2 and server["detected"] == 2
    # Named from Debian's pci.ids; the NVSwitch and the Intel function of the tree are not GPUs.
    assert [d["slot"] for d in server["devices"]] == ["0000:18:00.0", "0000:2a:00.0"]
    assert all("H100" in (d["model"] or "") for d in server["devices"]), server["devices"]
    assert server["driver"] == {
        "method": "preinstalled",
        "installed": "550.163.01",
        "loaded": "550.163.01",
        "cuda": "12.4",
    }
    assert [g["memory_mib"] for g in server["gpus"]] == [81559, 81559]
    # GPU 1 of the fixture has a MIG change pending: its own finding, not silence.
    assert server["assessment"] == "pending" and server["status"] == "blocked"
    assert any("GPU 1: MIG mode Disabled -> Enabled pending" in f["message"] for f in server["findings"])


def test_the_real_driver_host_reports_what_it_really_is(double_readback):
    agent = reported(double_readback, "GPU")["local-gpu-1"]
    assert agent["detected"] == 0 and agent["driver"]["installed"] == PINNED and agent["driver"]["loaded"] is None
    messages = " ".join(f["message"] for f in agent["findings"])
    assert "sysfs shows no NVIDIA GPU" in messages and "reboot required" in messages


def test_the_gpu_stack_manifest_leaves_the_driver_to_the_hosts():
    document = yaml.safe_load(SERVER.file(MANIFEST).content_string)
    values = yaml.safe_load(document["spec"]["valuesContent"])
    assert document["spec"]["chart"] == "gpu-operator" and document["spec"]["version"] == "v25.10.1"
    assert values["driver"] == {"enabled": False}
    assert {"name": "CONTAINERD_SOCKET", "value": "/run/k3s/containerd/containerd.sock"} in values["toolkit"]["env"]


def test_each_gpu_node_is_labelled_with_its_drivers_owner():
    nodes = json.loads(SERVER.check_output(f"{KUBECTL} get nodes -o json"))["items"]
    labels = {n["metadata"]["name"]: n["metadata"]["labels"].get("nvidia.com/gpu.deploy.driver") for n in nodes}
    assert labels == {"local-server": "false", "local-gpu-1": "false"}


def test_the_cluster_readback_compares_allocatable_gpus_with_the_profile(double_readback):
    stack = reported(double_readback, "GPU stack")["local-server"]
    # The RKE2 double runs no device plugin: nothing is allocatable, and the readback says so.
    assert stack["provider"] == "operator"
    assert stack["nodes"]["local-server"]["allocatable"] == 0 and stack["nodes"]["local-server"]["status"] == "drift"


def test_a_second_gpu_run_with_the_double_changes_nothing():
    totals = json.loads((DOUBLE_DIR / "gpu-totals.json").read_text())
    assert totals["success"] == 0 and totals["error"] == 0, totals
