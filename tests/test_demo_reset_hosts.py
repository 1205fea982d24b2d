"""The demo reset's writers on the local lane (over SSH as ops with sudo): a unit that writes to Redis all
the time is stopped before the reset touches anything and started once the result is verified (had it
run meanwhile, the checksums would differ and the reset fail); a reset killed while the writer was
stopped is completed by the next run, which starts it again."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from gpuaas.profile import REPO_ROOT
from tests.lane_clients import secret
from tests.local_variant import inventory, on_server

pytestmark = pytest.mark.hosts

WRITER = "gpuaas-demo-writer"
UNIT = f"""[Unit]
Description=A demo writer: counts in Redis every 50 ms (tests/test_demo_reset_hosts.py)

[Service]
EnvironmentFile=/etc/{WRITER}.env
ExecStart=/bin/sh -c 'while :; do redis-cli --no-auth-warning INCR writer:ticks >/dev/null; sleep 0.05; done'

[Install]
WantedBy=multi-user.target
"""


def reset(inventory_path, mode: str = "reset", wait: bool = True):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GPUAAS_")},
        "GPUAAS_RESET": mode,
        "GPUAAS_CONFIRM": f"{'capture' if mode == 'capture' else 'reset'} local",
    }
    command = ["pyinfra", "-y", str(inventory_path), "deploys/reset.py"]
    if not wait:
        return subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result.stdout + result.stderr


def as_root(command: str, stdin: str = "") -> None:
    """A command on the data host with `stdin` (a secret never goes on a command line)."""
    subprocess.run(["docker", "exec", "-i", "local-server", "sh", "-c", command], input=stdin, text=True, check=True)


def writer_state() -> str:
    return subprocess.run(
        ["docker", "exec", "local-server", "systemctl", "is-active", WRITER], capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def with_writer(local_hosts, tmp_path_factory):
    """The local profile naming the writer, the writer running, the repository's baseline loaded and
    captured with it; afterwards the writer removed and the plain baseline loaded and captured again."""
    as_root(f"umask 077 && sed 's/^/REDISCLI_AUTH=/' > /etc/{WRITER}.env", secret(local_hosts, "redis_password"))
    as_root(
        f"cat > /etc/systemd/system/{WRITER}.service && systemctl daemon-reload && systemctl enable --now {WRITER}",
        UNIT,
    )
    path = inventory(
        tmp_path_factory.mktemp("writer"),
        {},
        {},
        roles={"demo": {"baseline": "inventories/demo-baseline", "writers": [WRITER]}},
    )
    try:
        reset(path, "load")
        reset(path, "capture")
        yield path
    finally:
        on_server(
            f"systemctl disable --now {WRITER}; rm -f /etc/systemd/system/{WRITER}.service /etc/{WRITER}.env; "
            "systemctl daemon-reload"
        )
        plain = REPO_ROOT / "inventories" / "local.py"
        reset(plain, "load")
        reset(plain, "capture")


def test_the_writer_is_stopped_for_the_reset_and_started_after_it(with_writer):
    time.sleep(0.5)  # the writer moves the counter away from the captured value
    output = reset(with_writer)
    assert f"writers stopped: {WRITER}" in output and f"writers started: {WRITER}" in output
    assert "matches the baseline" in output
    assert (
        output.index("matches the baseline")
        > output.index(f"writers started: {WRITER}")
        > output.index(f"writers stopped: {WRITER}")
    )
    assert writer_state() == "active"


def test_a_reset_killed_with_the_writer_stopped_is_completed_and_starts_it(with_writer):
    process = reset(with_writer, wait=False)
    deadline = time.monotonic() + 60
    while writer_state() == "active" and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert writer_state() != "active"
    output = reset(with_writer)
    assert "matches the baseline" in output and writer_state() == "active"
