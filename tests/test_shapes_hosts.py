"""Every shipped profile, on hosts shaped like it (`gpuaas local up --shape ENV`: the same names, groups,
rings, GPU entries, services and settings), reached over SSH as the unprivileged account with sudo:
deploys/site.py converges, its second run changes nothing, and what the profile leaves off is said
once, with the reason. Every other deploy either converges or stops with a message that names the
file or the input, the field and the reason: never a traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
from contextlib import nullcontext

import pytest

from gpuaas.lane import shapes
from gpuaas.profile import REPO_ROOT, load_profile
from gpuaas.secrets import resolve
from tests.doubles.cloudflare_api import FakeCloudflare
from tests.lane import lane_host
from tests.lane_s3 import lane_s3

pytestmark = [pytest.mark.hosts, pytest.mark.apart]


def gpuaas(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(["gpuaas", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


#: Each shipped profile's file as it was before its lane came up.
SHIPPED_TEXT: dict[str, str] = {}


@pytest.fixture(scope="module", params=shapes.SHIPPED)
def shaped(request, lane_machine):
    env = request.param
    SHIPPED_TEXT[env] = (REPO_ROOT / "inventories" / f"{env}.yml").read_text()
    gpuaas("local", "up", "--shape", env, "--replace")
    yield load_profile(shapes.lane_profile_path(env))
    gpuaas("local", "down", "--shape", env)


def deploy(profile, name: str, *flags: str, **env: str) -> subprocess.CompletedProcess:
    inventory = shapes.lane_inventory_path(profile.name)
    return subprocess.run(
        ["pyinfra", "-y", *flags, str(inventory), name],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=1200,
        env={**os.environ, **env},
    )


def totals(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return json.loads(result.stdout)["results"]["totals"]


def test_site_converges_over_ssh_with_sudo_then_changes_nothing(shaped):
    first = deploy(shaped, "deploys/site.py", "--json")
    assert totals(first)["success"] > 0 and totals(first)["error"] == 0
    told = re.findall(r"^\s*(.+) is not deployed: (.+)$", first.stderr, re.M)
    # RKE2's release is pinned by no shipped profile: said once, however many nodes, with the file.
    assert [what for what, _ in told].count("RKE2") == 1, first.stderr[-3000:]
    assert len(told) == len(set(told)) and all(shaped.source in reason for _, reason in told)
    assert "Traceback" not in first.stdout + first.stderr
    second = deploy(shaped, "deploys/site.py", "--json")
    assert totals(second) == {**totals(second), "success": 0, "error": 0}


def test_the_hosts_are_shaped_like_the_profile_and_reached_as_the_operator(shaped):
    shipped = load_profile(shaped.name)
    assert [(h.name, h.groups, h.ring, h.gpu, h.labels) for h in shaped.hosts] == [
        (h.name, h.groups, h.ring, h.gpu, h.labels) for h in shipped.hosts
    ]
    for node in shaped.hosts:
        host = lane_host(shaped, node.name)
        assert host.check_output("uname -n") == node.name
        assert host.service("chrony").is_running
        assert host.run("id -un").stdout.strip() == "root"  # through sudo
    data = lane_host(shaped, shaped.group("data")[0].name)
    for unit in ("postgresql", "redis-server", "nats", "openbao"):
        assert data.service(unit).is_running, unit
    # The login is the unprivileged account: root itself cannot log in with the lane's key.
    node = shaped.hosts[0]
    config = REPO_ROOT / ".secrets" / shaped.secret_scope / "ssh" / "config"
    as_ops = subprocess.run(
        ["ssh", "-F", str(config), node.name, "id -un; sudo -n id -un"], capture_output=True, text=True, check=False
    )
    assert as_ops.stdout.split() == ["ops", "root"], as_ops.stderr
    as_root = subprocess.run(
        ["ssh", "-F", str(config), "-l", "root", node.name, "true"], capture_output=True, check=False
    )
    assert as_root.returncode != 0


#: What each deploy does against a shaped profile where no RKE2 release is pinned and nothing is confirmed:
#: converges (with the stand-ins of Cloudflare and of the external S3 store), or stops saying why.
def expectations(profile) -> dict[str, str | None]:
    source = profile.source
    return {
        "deploys/site.py": None,
        "deploys/data.py": None,
        "deploys/readback.py": None,
        "deploys/gpu.py": None,
        # The lane's containers have no GPU: each host says so.
        "deploys/gpu_check.py": None,
        "deploys/edge.py": None,
        "deploys/backup.py": None,
        "deploys/restore_drill.py": None,
        "deploys/restore.py": f"GPUAAS_CONFIRM='restore {profile.name}'",
        "deploys/cluster.py": f"{source}: artifacts rke2, rke2-checksums, rke2-images are not pinned",
        "deploys/upgrade.py": f"{source}: artifacts.rke2: not pinned",
        "deploys/remove_node.py": "GPUAAS_NODES",
        "deploys/uninstall.py": "GPUAAS_NODES",
        "deploys/revoke_origin_certs.py": f"GPUAAS_CONFIRM='revoke-origin-certificates {profile.name}'",
        # Only the demo may be reset, and only with its confirmation; the others are refused by name.
        "deploys/reset.py": "GPUAAS_CONFIRM='reset demo'" if profile.name == "demo" else "not a demo environment",
    }


def test_every_deploy_converges_or_stops_with_the_reason(shaped):
    expected = expectations(shaped)
    assert set(expected) == {f"deploys/{path.name}" for path in (REPO_ROOT / "deploys").glob("*.py")}
    token = resolve(shaped, shaped.dns.api_token).reveal()
    fake = FakeCloudflare(token, shaped.dns.zone)
    try:
        with lane_s3(shaped) if not shaped.services.object_store.enabled else nullcontext():
            for name, refusal in expected.items():
                result = deploy(shaped, name, CLOUDFLARE_BASE_URL=fake.base_url)
                output = result.stdout + result.stderr
                assert "Traceback" not in output and "exception occurred" not in output, (name, output[-3000:])
                if refusal is None:
                    assert result.returncode == 0, (name, output[-3000:])
                else:
                    assert result.returncode != 0 and refusal in output, (name, output[-3000:])
                assert token not in output
    finally:
        fake.close()
    assert len(fake.records) == len(shaped.dns.records)


def test_only_the_demo_resets_and_to_exactly_its_baseline(shaped):
    """Every other shape refuses each mode by name, confirmation and force flags set; the demo's shape
    loads, captures and resets (against the stand-in of its external store) to the same checksums."""
    if shaped.name != "demo":
        for mode in ("load", "capture", "reset"):
            word = "capture" if mode == "capture" else "reset"
            flags = {"GPUAAS_RESET": mode, "GPUAAS_CONFIRM": f"{word} {shaped.name}", "GPUAAS_FORCE": "yes"}
            result = deploy(shaped, "deploys/reset.py", **flags)
            assert result.returncode != 0 and "is not a demo environment" in result.stdout + result.stderr
        return

    def reset(mode: str, word: str = "reset") -> list[str]:
        result = deploy(shaped, "deploys/reset.py", GPUAAS_RESET=mode, GPUAAS_CONFIRM=f"{word} demo")
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-3000:]
        return [line.split(" checksum ", 1)[1] for line in output.splitlines() if " checksum " in line]

    with lane_s3(shaped) if not shaped.services.object_store.enabled else nullcontext():
        reset("load")
        reset("capture", "capture")
        first, second = reset("reset"), reset("reset")
    assert first == second and any(" postgres platform public.balances 2 " in line for line in first)


def test_the_shipped_profile_is_left_as_it_was(shaped):
    assert (REPO_ROOT / "inventories" / f"{shaped.name}.yml").read_text() == SHIPPED_TEXT[shaped.name]
    assert load_profile(shaped.name).lane is None and load_profile(shaped.name).secret_scope == shaped.name
    assert not (REPO_ROOT / ".secrets" / shaped.name).exists() or shaped.name == "local"
