"""The demo reset on the local lane (over SSH as ops with sudo), with the parts the molecule scenario leaves
out: a writer unit that writes to Redis all the time is stopped before the reset touches anything and
started once the result is verified (had it run meanwhile, the checksums would differ and the reset
fail); a reset killed while the writer was stopped is completed by the next run, which starts it again;
and with Keycloak deployed (the Keycloak double's distribution), the platform realm is imported afresh
and every persona signs in: with a TOTP code for the one with MFA set up, and refused as not fully set up
for the one whose MFA set-up is pending."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from gpuaas.profile import REPO_ROOT
from tests.doubles.keycloak import VERSION, build_zip
from tests.lane_clients import secret
from tests.local_variant import converge, inventory, on_server, pin

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
def demo(local_hosts, tmp_path_factory):
    """The local profile with Keycloak (the double) and the writer, converged; the writer running; the
    repository's baseline loaded and captured. Afterwards the writer and Keycloak are stopped and removed
    (the local profile runs neither) and the plain baseline is loaded and captured again."""
    directory = tmp_path_factory.mktemp("demo")
    keycloak = pin("keycloak", build_zip(directory), VERSION, f"https://keycloak.invalid/keycloak-{VERSION}.zip")
    settings = {"baseline": "inventories/demo-baseline", "writers": [WRITER]}
    path = inventory(directory, {"keycloak": keycloak}, {"keycloak": {"enabled": True}}, roles={"demo": settings})
    as_root(f"umask 077 && sed 's/^/REDISCLI_AUTH=/' > /etc/{WRITER}.env", secret(local_hosts, "redis_password"))
    as_root(
        f"cat > /etc/systemd/system/{WRITER}.service && systemctl daemon-reload && systemctl enable --now {WRITER}",
        UNIT,
    )
    try:
        converge(path)
        reset(path, "load")
        reset(path, "capture")
        yield path
    finally:
        on_server(
            f"systemctl disable --now {WRITER} keycloak.service; rm -f /etc/systemd/system/{WRITER}.service "
            f"/etc/{WRITER}.env; systemctl daemon-reload"
        )
        plain = REPO_ROOT / "inventories" / "local.py"
        reset(plain, "load")
        reset(plain, "capture")


def test_the_writer_is_stopped_for_the_reset_and_started_after_it(demo):
    time.sleep(0.5)  # the writer moves the counter away from the captured value
    output = reset(demo)
    assert f"writers stopped: {WRITER}" in output and f"writers started: {WRITER}" in output
    assert "matches the baseline" in output
    assert (
        output.index("matches the baseline")
        > output.index(f"writers started: {WRITER}")
        > output.index(f"writers stopped: {WRITER}")
    )
    assert writer_state() == "active"


def test_a_reset_killed_with_the_writer_stopped_is_completed_and_starts_it(demo):
    process = reset(demo, wait=False)
    deadline = time.monotonic() + 60
    while writer_state() == "active" and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert writer_state() != "active"
    output = reset(demo)
    assert "matches the baseline" in output and writer_state() == "active"


def test_the_realm_is_imported_afresh_and_every_persona_signs_in(demo):
    output = reset(demo)
    assert "realm platform imported; 4 personas checked" in output
    for persona, result in (("uma", "signed in"), ("tariq", "signed in"), ("paula", "MFA set-up pending")):
        assert f"persona {persona}: {result}" in output
    assert "persona otto: signed in" in output
    report = json.loads((REPO_ROOT / "build" / "local" / "evidence" / "demo-reset.json").read_text())
    assert report["personas"] == {
        "otto": "signed in",
        "paula": "MFA set-up pending",
        "tariq": "signed in",
        "uma": "signed in",
    }
