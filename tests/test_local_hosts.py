"""Integration tests against the local lane's systemd containers (skipped with the reason without Docker)."""

from __future__ import annotations

import json
import subprocess

import pytest

from gpuaas.profile import REPO_ROOT
from gpuaas.secrets import resolve

pytestmark = pytest.mark.hosts


def pyinfra(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["pyinfra", "-y", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=600
    )


def converge(deploy: str = "deploys/site.py", *flags: str) -> dict:
    result = pyinfra("--json", *flags, "inventories/local.py", deploy)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)["results"]["totals"]


def on_host(name: str, command: str) -> str:
    return subprocess.run(
        ["docker", "exec", name, "sh", "-c", command], capture_output=True, text=True, check=True
    ).stdout


def test_second_converge_reports_zero_changes(local_hosts):
    converge()
    totals = converge()
    assert totals["success"] == 0 and totals["error"] == 0
    # One verified step per host: the one-pass probe matched, so no operation had to read its facts.
    assert totals["no_change"] == len(local_hosts.hosts)


def test_drift_is_found_and_corrected(local_hosts):
    converge()
    on_host(
        "local-gpu-1",
        "echo 'net.ipv4.ip_forward = 0' >> /etc/sysctl.d/90-gpuaas.conf; "
        "systemctl stop chrony; "
        "grep -v local-server /etc/hosts > /tmp/hosts && cat /tmp/hosts > /etc/hosts",
    )
    totals = converge()
    assert totals["success"] >= 3, totals
    assert "net.ipv4.ip_forward = 0" not in on_host("local-gpu-1", "cat /etc/sysctl.d/90-gpuaas.conf")
    assert on_host("local-gpu-1", "systemctl is-active chrony").strip() == "active"
    assert "172.30.77.10 local-server api.local.gpuaas.test" in on_host("local-gpu-1", "cat /etc/hosts")
    assert converge()["success"] == 0


def test_secret_value_never_appears_in_output_or_diff(local_hosts):
    token = resolve(local_hosts, local_hosts.cluster.token).reveal()
    on_host("local-server", "rm -f /root/gpuaas-test-token")
    dry = pyinfra("--dry", "--diff", "-vvv", "inventories/local.py", "tests/deploys/secret_file.py")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert token not in dry.stdout + dry.stderr
    assert on_host("local-server", "test -e /root/gpuaas-test-token || echo absent").strip() == "absent"
    first = pyinfra("--diff", "-vvv", "inventories/local.py", "tests/deploys/secret_file.py")
    assert first.returncode == 0, first.stderr[-3000:]
    assert token not in first.stdout + first.stderr
    assert on_host("local-server", "cat /root/gpuaas-test-token") == token
    assert on_host("local-server", "stat -c '%a %U' /root/gpuaas-test-token").strip() == "600 root"
    again = pyinfra("--json", "--diff", "inventories/local.py", "tests/deploys/secret_file.py")
    assert token not in again.stdout + again.stderr
    assert json.loads(again.stdout)["results"]["totals"]["success"] == 0


def test_dry_run_changes_nothing(local_hosts):
    converge()
    on_host("local-server", "rm -f /etc/modules-load.d/gpuaas.conf")
    dry = pyinfra("--dry", "--diff", "inventories/local.py", "deploys/site.py")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert on_host("local-server", "test -e /etc/modules-load.d/gpuaas.conf || echo absent").strip() == "absent"
    assert converge()["success"] >= 1
    assert "br_netfilter" in on_host("local-server", "cat /etc/modules-load.d/gpuaas.conf")
