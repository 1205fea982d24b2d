"""`gpuaas render` writes each host's effective configuration, deterministically, without contacting hosts."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import yaml

from gpuaas.profile import REPO_ROOT, load_profile
from gpuaas.render import STAMP, RenderError, render


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
    # 1 redis, 2 openbao files and, where the object store is on (3) or Temporal runs in dev mode (5), their units
    per_data_host = 7 + (3 if profile.services.object_store.enabled else 0)
    per_data_host += 5 if profile.services.temporal.mode == "dev" else 0
    cluster_hosts = [h for h in profile.hosts if {"rke2_servers", "rke2_agents"} & set(h.groups)]
    # and RKE2's config.yaml on every cluster host; and the render's stamp; and per GPU host the nouveau
    # blacklist, with the distro driver its apt pins and unattended-upgrades' blacklist
    methods = [profile.role_settings("gpu", h).driver.method for h in profile.hosts if h.gpu is not None]
    gpu_files = sum({"distro": 3, "operator": 1}.get(method, 0) for method in methods)
    assert (
        len(first)
        == 1 + 2 + 8 * len(profile.hosts) + per_data_host * len(profile.group("data")) + len(cluster_hosts) + gpu_files
    )


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
    assert "rendered 30 files for staging" in result.stdout
    hosts_block = (tmp_path / "stg" / "hosts" / "stg-gpu-1" / "files" / "etc" / "hosts.block").read_text()
    assert "10.20.0.10 stg-server-1 api.staging.gpuaas.example.com" in hosts_block


def _cli_render(env, out, cwd=REPO_ROOT):
    return subprocess.run(
        [sys.executable, "-m", "gpuaas", "render", env, "--out", str(out)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def _snapshot(directory):
    """Every entry under directory with its content (files) or kind, to prove nothing changed."""
    return {p.relative_to(directory): p.read_bytes() if p.is_file() else "dir" for p in sorted(directory.rglob("*"))}


def test_render_leaves_a_stamp_listing_exactly_the_files_it_wrote(tmp_path):
    out = tmp_path / "out"
    files = render(load_profile("staging"), out)
    listed = [line for line in (out / STAMP).read_text().splitlines() if not line.startswith("#")]
    assert listed == sorted(str(f.relative_to(out)) for f in files)
    assert {p for p in out.rglob("*") if p.is_file()} == set(files) | {out / STAMP}


def test_out_dot_in_a_directory_of_other_files_is_refused_and_nothing_changes(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "src").mkdir(parents=True)
    (checkout / "README.md").write_text("mine\n")
    (checkout / "src" / "main.py").write_text("print('mine')\n")
    before = _snapshot(checkout)
    result = _cli_render("staging", ".", cwd=checkout)
    assert result.returncode == 2
    assert "holds files that no render wrote" in result.stderr and "nothing was changed" in result.stderr
    assert "Traceback" not in result.stderr
    assert _snapshot(checkout) == before


def test_out_naming_an_existing_file_is_refused_and_the_file_kept(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("keep me\n")
    result = _cli_render("staging", target)
    assert result.returncode == 2
    assert "is not a directory" in result.stderr and "Traceback" not in result.stderr
    assert target.read_text() == "keep me\n"


def test_rerender_removes_only_its_own_stale_files_and_keeps_others(tmp_path):
    out = tmp_path / "out"
    assert _cli_render("prod", out).returncode == 0
    (out / "notes.md").write_text("operator notes\n")
    (out / "hosts" / "prod-gpu-01" / "review.txt").write_text("reviewed\n")
    result = _cli_render("staging", out)
    assert result.returncode == 0, result.stderr
    assert (out / "notes.md").read_text() == "operator notes\n"
    assert (out / "hosts" / "prod-gpu-01" / "review.txt").read_text() == "reviewed\n"
    # prod-gpu-01 keeps only the foreign file; every other prod host went with its files.
    assert sorted(p.name for p in (out / "hosts").iterdir()) == ["prod-gpu-01", "stg-gpu-1", "stg-server-1"]
    assert [p.name for p in (out / "hosts" / "prod-gpu-01").rglob("*")] == ["review.txt"]


def test_a_foreign_file_where_render_writes_is_refused_even_in_a_rendered_directory(tmp_path):
    out = tmp_path / "out"
    render(load_profile("staging"), out)
    extra = out / "hosts" / "stg-server-1" / "files" / "etc" / "rancher"
    shutil.rmtree(extra)
    extra.mkdir()
    (extra / "rke2").write_text("a file where render wants a directory\n")
    before = _snapshot(out)
    with pytest.raises(RenderError):
        render(load_profile("staging"), out)
    assert _snapshot(out) == before


def test_a_stamp_naming_paths_outside_the_directory_is_not_trusted(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("outside\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / STAMP).write_text("../victim.txt\n")
    with pytest.raises(RenderError, match="outside the directory"):
        render(load_profile("staging"), out)
    assert victim.read_text() == "outside\n" and sorted(p.name for p in out.iterdir()) == [STAMP]


def test_a_symlink_out_of_the_directory_is_not_written_through(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    render(load_profile("staging"), out)
    shutil.rmtree(out / "hosts")
    (out / "hosts").symlink_to(elsewhere)
    with pytest.raises(RenderError, match="symlink"):
        render(load_profile("staging"), out)
    assert list(elsewhere.iterdir()) == []


def test_an_interrupted_render_is_still_recognised_as_its_own(tmp_path):
    out = tmp_path / "out"
    render(load_profile("prod"), out)
    # As a render that stopped after its first stamp: both renders' files listed, only some written.
    stamp = (out / STAMP).read_text()
    (out / STAMP).write_text(stamp + "hosts/stg-server-1/settings.yml\n")
    (out / "hosts" / "stg-server-1").mkdir(parents=True)
    (out / "hosts" / "stg-server-1" / "settings.yml").write_text("half\n")
    render(load_profile("staging"), out)
    assert sorted(p.name for p in (out / "hosts").iterdir()) == ["stg-gpu-1", "stg-server-1"]


def test_the_build_directory_keeps_other_commands_files(tmp_path):
    build = tmp_path / "build" / "staging"
    (build / "evidence").mkdir(parents=True)
    (build / "dns-plan.json").write_text("{}\n")
    (build / "evidence" / "restore-drill.json").write_text("{}\n")
    render(load_profile("staging"), build, shared=True)
    render(load_profile("dev"), build, shared=True)
    assert (build / "dns-plan.json").read_text() == "{}\n"
    assert (build / "evidence" / "restore-drill.json").read_text() == "{}\n"
    assert sorted(p.name for p in (build / "hosts").iterdir()) == ["dev-1"]
