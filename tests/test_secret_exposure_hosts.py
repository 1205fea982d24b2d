"""Secrets stay secret over SSH with sudo. While a converge writes every secret of the local lane again
(OpenBao initialised afresh included), a second unprivileged account on each host records everything
it can read: every file created under /tmp, /var/tmp and the operator's home, and every process's
command line. None holds a secret value, and neither do sudo's log, the journal or pyinfra's output.
A secret whose final copy fails leaves no copy of its value anywhere on the host."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from gpuaas import artifacts
from gpuaas.lane.access import config_file
from gpuaas.profile import REPO_ROOT
from gpuaas.secrets import resolve
from roles.nats.config import AUTH as NATS_AUTH
from roles.object_store.config import S3_CONFIG
from roles.openbao.config import settings_for as openbao_settings
from roles.postgres.config import ROLES_SQL
from roles.redis.config import AUTH as REDIS_AUTH
from tests.hosttools.runs import pyinfra

pytestmark = pytest.mark.hosts

WATCHER = Path(__file__).parent / "hosttools" / "secret_watcher.py"
WATCHED = ("/tmp", "/var/tmp", "/home/ops")
RECORD = "/home/watcher/record.json"
#: Where nothing but the secret files themselves may hold a secret's value (the host's writable places).
SEARCHED = "/etc /root /home /tmp /var /run /opt /srv /usr/local"


def on(name: str, command: str, check: bool = True) -> str:
    """A command as root through `docker exec`: the test's own instrument, outside the operator's path."""
    return subprocess.run(
        ["docker", "exec", name, "sh", "-c", command], capture_output=True, text=True, check=check
    ).stdout


def as_operator(profile, name: str, command: str, input: str = "") -> None:
    subprocess.run(
        ["ssh", "-F", str(config_file(profile)), name, command], input=input, text=True, check=True, capture_output=True
    )


def start_watching(name: str) -> None:
    on(
        name,
        "id -u watcher >/dev/null 2>&1 || useradd --create-home --shell /bin/sh watcher; "
        f"rm -f {RECORD} {RECORD}.ready",
    )
    subprocess.run(["docker", "cp", str(WATCHER), f"{name}:/home/watcher/secret_watcher.py"], check=True)
    subprocess.run(
        ["docker", "exec", "-d", "-u", "watcher", name, "python3", "/home/watcher/secret_watcher.py", RECORD, *WATCHED],
        check=True,
    )
    deadline = time.monotonic() + 30
    while on(name, f"test -e {RECORD}.ready && echo ready", check=False).strip() != "ready":
        assert time.monotonic() < deadline, f"the watcher did not start on {name}"
        time.sleep(0.2)


def stop_watching(name: str) -> dict:
    on(name, "pkill -TERM -u watcher -f secret_watcher", check=False)
    deadline = time.monotonic() + 60
    while on(name, f"test -s {RECORD} && echo done", check=False).strip() != "done":
        assert time.monotonic() < deadline, f"the watcher on {name} wrote no record"
        time.sleep(0.2)
    return json.loads(on(name, f"cat {RECORD}"))


def found_in(record: dict, needles: dict[str, str]) -> list[str]:
    """Where a needle shows in what the watcher could read: "NEEDLE in PATH" / "NEEDLE in a command line"."""
    found: list[str] = []
    for label, needle in needles.items():
        found += [
            f"{label} in {path}"
            for path, contents in record["files"].items()
            if any(needle in content for content in contents)
        ]
        found += [f"{label} in a command line" for line in record["cmdlines"] if needle in line][:1]
    return found


def test_no_secret_is_readable_by_another_account_during_an_ssh_sudo_converge(local_hosts):
    assert pyinfra("inventories/local.py", "deploys/site.py").returncode == 0
    server = local_hosts.group("data")[0].name
    # Every secret file of the lane is written again, and OpenBao is initialised afresh.
    on(
        server,
        f"rm -f {REDIS_AUTH} {NATS_AUTH} {S3_CONFIG} {ROLES_SQL}; systemctl stop openbao; "
        "rm -rf /var/lib/openbao/raft/*",
    )
    started = on(server, "date +%s").strip()
    for node in local_hosts.hosts:
        start_watching(node.name)
    decoy_file, decoy_command = secrets.token_hex(16), secrets.token_hex(16)
    as_operator(
        local_hosts,
        server,
        f"umask 022; cat > /tmp/gpuaas-watch-control; sh -c 'sleep 1; : {decoy_command}';"
        " rm -f /tmp/gpuaas-watch-control",
        input=decoy_file,
    )
    result = pyinfra("--json", "inventories/local.py", "deploys/site.py")
    records = {node.name: stop_watching(node.name) for node in local_hosts.hosts}
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["results"]["totals"]["success"] >= 5

    # The watcher sees what another account could read: a file and a command line made to be seen.
    assert found_in(records[server], {"decoy file": decoy_file, "decoy command": decoy_command}) == [
        "decoy file in /tmp/gpuaas-watch-control",
        "decoy command in a command line",
    ]
    # It watched the secrets being written: each write's command line names its file (and nothing more).
    for path in (REDIS_AUTH, NATS_AUTH, S3_CONFIG, ROLES_SQL):
        assert any(line.startswith("sudo -H -n sh -c") and path in line for line in records[server]["cmdlines"]), path

    init = json.loads(resolve(local_hosts, openbao_settings(local_hosts).init_secret).reveal())[server]
    needles = {
        name: resolve(local_hosts, f"secret:{name}").reveal() for name in local_hosts.secrets if name != "openbao_init"
    }
    needles |= {f"unseal key {i}": key for i, key in enumerate(init["unseal_keys_b64"])}
    needles |= {"OpenBao root token": init["root_token"]}
    key = (REPO_ROOT / ".secrets" / "local" / "ssh" / "id_ed25519").read_text().splitlines()[1]
    needles["the lane's private key"] = key
    for name, record in records.items():
        assert found_in(record, needles) == [], name
        # What was too large to keep is a pinned program, nothing else.
        programs = {artifacts.program_digest(n, pin) for n, pin in local_hosts.artifacts.items()}
        large = [c for contents in record["files"].values() for c in contents if c.startswith("sha256:")]
        assert all(c.split()[0].removeprefix("sha256:") in programs for c in large)
    journal = on(server, f"journalctl --no-pager -o cat --since @{started}")
    assert "COMMAND=" in journal  # sudo logged every command the converge ran
    assert [label for label, needle in needles.items() if needle in journal] == []
    assert [label for label, needle in needles.items() if needle in result.stdout + result.stderr] == []
    status = on(server, f"curl -sS --cacert /etc/openbao/tls/ca.crt https://{server}:8200/v1/sys/seal-status")
    assert json.loads(status)["sealed"] is False


@pytest.mark.parametrize("failure", ["the owner does not exist", "a directory is in the way"])
def test_a_secret_whose_final_copy_fails_leaves_no_copy_of_its_value(local_hosts, failure):
    server = local_hosts.group("rke2_servers")[0].name
    value = secrets.token_hex(24)
    path, group = "/etc/gpuaas-test/secret", "root"
    on(server, "rm -rf /etc/gpuaas-test")
    if failure == "the owner does not exist":
        group = "no-such-group"
    else:
        on(server, f"mkdir -p {path}/inside")
    result = pyinfra(
        "inventories/local.py",
        "tests/deploys/secret_file.py",
        env={"GPUAAS_TEST_SECRET": value, "GPUAAS_TEST_SECRET_PATH": path, "GPUAAS_TEST_SECRET_GROUP": group},
    )
    assert result.returncode != 0
    assert value not in result.stdout + result.stderr
    holding = on(server, f"grep -rlF -- {value} {SEARCHED} 2>/dev/null", check=False)
    assert holding == "", holding
    assert on(server, "ls -A /etc/gpuaas-test").split() == ([] if group != "root" else ["secret"])
    on(server, "rm -rf /etc/gpuaas-test")
