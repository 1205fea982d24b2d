"""The local lane's decisions that need no Docker engine."""

from __future__ import annotations

import pytest

from gpuaas import local_lane
from gpuaas.profile import load_profile


def test_image_tag_changes_with_the_recipe(monkeypatch):
    tag = local_lane.image_tag()
    assert tag == local_lane.image_tag() and tag.startswith("gpuaas-testhost:")
    monkeypatch.setattr(local_lane, "IMAGE_PACKAGES", local_lane.IMAGE_PACKAGES + ("vim",))
    assert local_lane.image_tag() != tag


def test_run_flags_are_the_measured_systemd_set():
    flags = local_lane.SYSTEMD_RUN_FLAGS
    assert "--privileged" not in flags
    assert flags[flags.index("--cap-drop") + 1] == "SYS_RESOURCE"
    assert "/sys/fs/cgroup:/sys/fs/cgroup:rw" in flags


def test_network_name_follows_environment_and_subnet():
    assert local_lane.network_name(load_profile("local")) == "gpuaas-local-172.30.77.0-24"


def test_mirror_is_read_from_apt_sources(tmp_path, monkeypatch):
    sources = tmp_path / "debian.sources"
    sources.write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian-security\n"
    )
    monkeypatch.setattr(local_lane.glob, "glob", lambda pattern: [str(sources)])
    assert local_lane.debian_mirror() == "http://mirror.invalid/debian"


def test_without_root_or_engine_it_says_what_is_missing(monkeypatch):
    monkeypatch.setattr(local_lane, "engine_running", lambda: False)
    monkeypatch.setattr(local_lane, "_is_root", lambda: False)
    monkeypatch.setattr(local_lane.shutil, "which", lambda name: None)
    with pytest.raises(local_lane.LocalLaneError, match="needs the docker client.*run this command as root"):
        local_lane.ensure_engine()


def test_only_docker_profiles_run_in_the_local_lane():
    with pytest.raises(local_lane.LocalLaneError, match="connection.kind ssh"):
        local_lane.up(load_profile("staging"))


def test_inventory_refuses_local_hosts_that_are_not_running(monkeypatch, capsys):
    from gpuaas import inventory

    monkeypatch.setattr(local_lane, "running_names", lambda profile: {"local-server"})
    with pytest.raises(SystemExit) as stop:
        inventory.load_groups("local")
    assert stop.value.code == 2
    assert "hosts not running: local-gpu-1; start them with `gpuaas local up`" in capsys.readouterr().err
