"""`gpuaas render` writes each host's effective configuration, deterministically, without contacting hosts."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from gpuaas.profile import REPO_ROOT, load_profile
from gpuaas.render import render


def _tree(directory):
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("env", ["local", "dev", "demo", "staging", "prod"])
def test_render_is_byte_identical_on_a_rerun(tmp_path, env):
    profile = load_profile(env)
    render(profile, tmp_path / "a")
    render(profile, tmp_path / "b")
    first, second = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert first == second
    # environment and secrets; per host settings and 7 common files; per data host 2 postgres, 2 nats,
    # 1 redis, 2 openbao files and, where the object store is on or Temporal runs in dev mode, their units
    per_data_host = 7 + (1 if profile.services.object_store.enabled else 0)
    per_data_host += 1 if profile.services.temporal.mode == "dev" else 0
    cluster_hosts = [h for h in profile.hosts if {"rke2_servers", "rke2_agents"} & set(h.groups)]
    # and RKE2's config.yaml on every cluster host
    assert len(first) == 2 + 8 * len(profile.hosts) + per_data_host * len(profile.group("data")) + len(cluster_hosts)


def test_rerender_removes_stale_files(tmp_path):
    out = tmp_path / "out"
    render(load_profile("prod"), out)
    render(load_profile("staging"), out)
    assert sorted(p.name for p in (out / "hosts").iterdir()) == ["stg-gpu-1", "stg-server-1"]


def test_rendered_settings_merge_defaults_profile_and_host(tmp_path):
    render(load_profile("local"), tmp_path)
    settings = yaml.safe_load((tmp_path / "hosts" / "local-gpu-1" / "settings.yml").read_text())
    common = settings["roles"]["common"]
    assert common["journald"]["system_max_use"] == "256M"  # from the profile
    assert common["journald"]["max_retention"] == "14day"  # the role's default
    assert common["time_sync"] == {"servers": [], "control_clock": False}
    assert settings["host"]["ring"] == 0 and settings["host"]["groups"] == ["rke2_agents"]
    chrony = (tmp_path / "hosts" / "local-gpu-1" / "files" / "etc" / "default" / "chrony").read_text()
    assert 'DAEMON_OPTS="-F 1 -x"' in chrony


def test_cli_render_writes_under_build(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "gpuaas", "render", "staging", "--out", str(tmp_path / "stg")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "rendered 27 files for staging" in result.stdout
    hosts_block = (tmp_path / "stg" / "hosts" / "stg-gpu-1" / "files" / "etc" / "hosts.block").read_text()
    assert "10.20.0.10 stg-server-1 api.staging.gpuaas.example.com" in hosts_block
