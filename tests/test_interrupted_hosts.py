"""An interrupted converge, run again, converges: the pyinfra process killed in the middle of installing
the data services' programs, and separately the data host restarted in the middle of it. Nothing is
duplicated or left half-written in use: a program is in use only once it is whole and verified, no
secret's work directory is left, and the run after the repairing one changes nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from gpuaas import artifacts
from gpuaas.lane.access import provision
from gpuaas.lane.hosts import wait_booted
from gpuaas.operations import program_target
from gpuaas.profile import REPO_ROOT

pytestmark = pytest.mark.hosts

#: The data services' programs, by their link; the converge uploads each again after wipe().
LINKS = {
    "nats-server": "/usr/local/bin/nats-server",
    "openbao": "/usr/local/bin/bao",
    "seaweedfs": "/usr/local/bin/weed",
    "temporal": "/usr/local/bin/temporal",
}
UNITS = "nats openbao seaweedfs temporal"


def on(name: str, command: str, check: bool = True) -> str:
    return subprocess.run(
        ["docker", "exec", name, "sh", "-c", command], capture_output=True, text=True, check=check
    ).stdout


def converge(deploy: str = "deploys/site.py") -> dict:
    result = subprocess.run(
        ["pyinfra", "-y", "--json", "inventories/local.py", deploy],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)["results"]["totals"]


def wipe(server: str) -> None:
    """Take the data services' programs and secret files away, so the next converge installs them again."""
    on(
        server,
        f"systemctl stop {UNITS}; rm -rf /opt/gpuaas {' '.join(LINKS.values())} "
        "/etc/nats/auth.conf /etc/redis/gpuaas-auth.conf",
    )


def interrupted_run(until: str, interrupt) -> subprocess.CompletedProcess:
    """Start a converge, call `interrupt(process)` once pyinfra starts the operation named `until`;
    returns the finished (or killed) run."""
    process = subprocess.Popen(
        ["pyinfra", "-y", "-v", "inventories/local.py", "deploys/site.py"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "Starting operation" in line and until in line:
            time.sleep(0.5)
            interrupt(process)
            break
    else:
        pytest.fail(f"the converge ended before `{until}`:\n{''.join(seen[-40:])}")
    output = "".join(seen) + process.stdout.read()
    process.wait(timeout=600)
    return subprocess.CompletedProcess(process.args, process.returncode, output, "")


def assert_whole_and_settled(profile, server: str) -> None:
    """Every program in use is the verified one; nothing an interrupted step writes is left beside it."""
    for name, link in LINKS.items():
        pin = profile.artifacts[name]
        target = program_target(name, pin.version, artifacts.program_name(name, pin))
        assert on(server, f"readlink {link}").strip() == target
        assert on(server, f"sha256sum < {target}").split()[0] == artifacts.program_digest(name, pin), name
    leftovers = on(
        server, "find /etc /opt /var/lib /root -name '.gpuaas-secret.*' -o -name '*.upload' 2>/dev/null", check=False
    )
    assert leftovers == ""
    assert on(server, "dpkg --audit").strip() == ""
    hosts = on(server, "cat /etc/hosts")
    assert hosts.count("# BEGIN gpuaas cluster hosts") == 1
    assert on(server, f"systemctl is-active {UNITS} postgresql redis-server").split() == ["active"] * 6


def test_a_killed_converge_run_again_converges(local_hosts):
    server = local_hosts.group("data")[0].name
    converge()
    wipe(server)
    pin = local_hosts.artifacts["openbao"]
    killed = interrupted_run(
        f"Ensure openbao {pin.version} is on the host", lambda process: os.killpg(process.pid, signal.SIGKILL)
    )
    assert killed.returncode == -signal.SIGKILL
    # Killed while the program travelled: it is not in use, and no service runs a part of it.
    assert on(server, f"test -e {LINKS['openbao']} || echo absent").strip() == "absent"
    assert on(server, "systemctl is-active openbao", check=False).strip() != "active"
    totals = converge()
    assert totals["error"] == 0 and totals["success"] > 0
    assert converge()["success"] == 0
    assert_whole_and_settled(local_hosts, server)


def test_a_host_restarted_during_the_converge_converges_on_the_next_run(local_hosts):
    server = local_hosts.group("data")[0].name
    converge()
    wipe(server)

    def restart(process):
        subprocess.run(["docker", "restart", "-t", "0", server], check=True, capture_output=True)

    pin = local_hosts.artifacts["seaweedfs"]
    interrupted = interrupted_run(f"Ensure seaweedfs {pin.version} is on the host", restart)
    assert interrupted.returncode != 0
    wait_booted([server])
    provision(local_hosts)  # sshd is up again (the host's keys did not change)
    totals = converge()
    assert totals["error"] == 0 and totals["success"] > 0
    assert converge()["success"] == 0
    assert_whole_and_settled(local_hosts, server)
