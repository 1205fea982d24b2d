"""Integration tests against the local lane's systemd containers (skipped with the reason without Docker)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from gpuaas.profile import REPO_ROOT, load_profile
from gpuaas.secrets import GENERATED_DIR, resolve

pytestmark = pytest.mark.hosts


def pyinfra(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["pyinfra", "-y", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=600
    )


def converge_results(deploy: str = "deploys/site.py", *flags: str) -> dict:
    result = pyinfra("--json", *flags, "inventories/local.py", deploy)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)["results"]


def converge(deploy: str = "deploys/site.py", *flags: str) -> dict:
    return converge_results(deploy, *flags)["totals"]


def on_host(name: str, command: str) -> str:
    return subprocess.run(
        ["docker", "exec", name, "sh", "-c", command], capture_output=True, text=True, check=True
    ).stdout


def test_second_converge_reports_zero_changes(local_hosts):
    converge()
    results = converge_results()
    assert results["totals"]["success"] == 0 and results["totals"]["error"] == 0
    # roles/common takes one verified step per host: its one-pass probe matched, so none of its
    # operations had to read their own facts.
    common_ops = [op for op in results["operations"] if op["name"].startswith("Common host baseline")]
    assert [op["name"] for op in common_ops] == ["Common host baseline | Ensure the common baseline is in place"]
    assert len(common_ops[0]["no_change"]) == len(local_hosts.hosts)


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


def test_tampered_artifact_stops_the_deploy_before_any_operation(local_hosts, tmp_path):
    from gpuaas import artifacts

    converge("deploys/data.py")
    pin = local_hosts.artifacts["nats-server"]
    genuine = artifacts.verified("nats-server", pin)
    tampered = tmp_path / genuine.name
    tampered.write_bytes(genuine.read_bytes() + b"\0")
    state = "ls -lR --time-style=+%s /opt/gpuaas /etc/nats /etc/systemd/system/nats.service"
    before = on_host("local-server", state)
    on_host("local-server", "rm -f /usr/local/bin/nats-server")
    result = subprocess.run(
        ["pyinfra", "-y", "inventories/local.py", "deploys/data.py"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, artifacts.MIRROR_ENV: str(tmp_path)},
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"artifacts.nats-server: {genuine.name} has sha256" in output and "refusing to install it" in output
    assert "Starting operation" not in output
    assert on_host("local-server", "test -e /usr/local/bin/nats-server || echo absent").strip() == "absent"
    converge("deploys/data.py")
    assert on_host("local-server", state) == before


def test_a_dropped_database_comes_back(local_hosts):
    converge("deploys/data.py")
    on_host("local-server", "runuser -u postgres -- psql -Xq -c 'DROP DATABASE keycloak'")
    assert converge("deploys/data.py")["success"] == 1
    databases = on_host("local-server", "runuser -u postgres -- psql -XAt -c 'SELECT datname FROM pg_database'")
    assert "keycloak" in databases.split()
    assert converge("deploys/data.py")["success"] == 0


def openbao_status() -> dict:
    from roles.openbao.config import client

    profile = load_profile("local")
    command = client(profile.services.openbao, profile.host("local-server"), "status -format=json")
    return json.loads(on_host("local-server", f"{command}; true"))


def test_openbao_init_output_is_stored_never_printed_and_a_restart_is_unsealed(local_hosts):
    converge("deploys/data.py")
    on_host("local-server", "systemctl stop openbao && rm -rf /var/lib/openbao/raft/*")
    result = pyinfra("--diff", "-vvv", "inventories/local.py", "deploys/data.py")
    assert result.returncode == 0, result.stderr[-3000:]
    stored = json.loads(resolve(local_hosts, local_hosts.services.openbao.init_secret).reveal())["local-server"]
    assert len(stored["unseal_keys_b64"]) == local_hosts.services.openbao.key_shares
    for value in [*stored["unseal_keys_b64"], stored["root_token"]]:
        assert value not in result.stdout + result.stderr
    assert openbao_status()["sealed"] is False

    on_host("local-server", "systemctl restart openbao")
    assert openbao_status()["sealed"] is True
    assert converge("deploys/data.py")["success"] == 1
    assert openbao_status()["sealed"] is False
    assert converge("deploys/data.py")["success"] == 0


def test_data_roles_verify_in_one_step_and_repair_what_drifted(local_hosts):
    converge("deploys/data.py")
    steps = [op["name"] for op in converge_results("deploys/data.py")["operations"]]
    # Each data role found its whole state in place with one probe: no operation read its own facts.
    assert steps and all(step.endswith("is in place") for step in steps), steps
    assert {step.split(" | ")[0] for step in steps} >= {"PostgreSQL", "Redis", "NATS JetStream", "OpenBao", "Temporal"}
    on_host("local-server", "systemctl stop redis-server && chmod 644 /etc/nats/auth.conf")
    assert converge("deploys/data.py")["success"] >= 2
    assert on_host("local-server", "systemctl is-active redis-server").strip() == "active"
    assert on_host("local-server", "stat -c %a /etc/nats/auth.conf").strip() == "640"
    assert converge("deploys/data.py")["success"] == 0


def test_a_stored_secret_its_reader_cannot_use_stops_the_deploy_naming_it_and_its_source(local_hosts):
    converge("deploys/data.py")
    stored = GENERATED_DIR / local_hosts.secret_scope / "openbao_init"
    kept = stored.read_text()
    try:
        stored.write_text("this is not the init output\n")
        on_host("local-server", "systemctl restart openbao")  # sealed: the deploy needs the stored keys
        result = pyinfra("inventories/local.py", "deploys/data.py")
        output = result.stdout + result.stderr
        assert result.returncode != 0
        assert f"inventories/local.yml: secrets.openbao_init: the value from stored in {stored} is not JSON" in output
        assert "Traceback" not in output and "this is not the init output" not in output
    finally:
        stored.write_text(kept)
    assert converge("deploys/data.py")["success"] >= 1
    assert openbao_status()["sealed"] is False
