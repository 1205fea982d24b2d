"""The local lane's decisions that need no Docker engine: image, flags, tools, shapes."""

from __future__ import annotations

import ipaddress

import pytest
import yaml

from gpuaas.lane import LaneError, image, machine, shapes
from gpuaas.lane import hosts as lane_hosts
from gpuaas.profile import REPO_ROOT, load_profile


def test_image_tag_changes_with_the_recipe(monkeypatch):
    tag = image.image_tag()
    assert tag == image.image_tag() and tag.startswith("gpuaas-testhost:")
    monkeypatch.setattr(image, "IMAGE_PACKAGES", image.IMAGE_PACKAGES + ("vim",))
    assert image.image_tag() != tag


def test_run_flags_are_the_measured_systemd_set():
    flags = lane_hosts.SYSTEMD_RUN_FLAGS
    assert "--privileged" not in flags
    assert flags[flags.index("--cap-drop") + 1] == "SYS_RESOURCE"
    assert "/sys/fs/cgroup:/sys/fs/cgroup:rw" in flags


def test_network_name_follows_environment_and_subnet():
    assert lane_hosts.network_name(load_profile("local")) == "gpuaas-local-172.30.77.0-24"


def test_mirror_is_read_from_apt_sources(tmp_path, monkeypatch):
    sources = tmp_path / "debian.sources"
    sources.write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian-security\n"
    )
    monkeypatch.setattr(image.glob, "glob", lambda pattern: [str(sources)])
    assert image.debian_mirror() == "http://mirror.invalid/debian"


def test_without_root_or_engine_it_says_what_is_missing(monkeypatch):
    monkeypatch.setattr(machine, "engine_running", lambda: False)
    monkeypatch.setattr(machine, "is_root", lambda: False)
    monkeypatch.setattr(machine.shutil, "which", lambda name: None)
    with pytest.raises(LaneError, match="needs the docker client.*run this command as root"):
        machine.ensure_engine()


def test_missing_programs_are_named_by_their_debian_packages(monkeypatch):
    monkeypatch.setattr(machine.shutil, "which", lambda name: None if name in ("age-keygen", "ssh") else "/bin/x")
    assert machine.missing_packages() == ["age", "openssh-client"]
    monkeypatch.setattr(machine, "is_root", lambda: False)
    with pytest.raises(LaneError, match=r"packages age, openssh-client: .*apt-get install -y age openssh-client"):
        machine.ensure_tools()


def test_only_lane_profiles_run_in_the_local_lane():
    with pytest.raises(LaneError, match="has no `lane:` entry"):
        lane_hosts.up(load_profile("staging"))


def test_inventory_refuses_lane_hosts_that_are_not_running(monkeypatch, capsys):
    from gpuaas import inventory

    monkeypatch.setattr(lane_hosts, "running_names", lambda profile: {"local-server"})
    with pytest.raises(SystemExit) as stop:
        inventory.load_groups("local")
    assert stop.value.code == 2
    told = capsys.readouterr().err
    assert "hosts not running as this checkout's lane: local-gpu-1; start them with `gpuaas local up`" in told


def _shape(env: str) -> tuple[dict, dict]:
    raw = yaml.safe_load((REPO_ROOT / "inventories" / f"{env}.yml").read_text())
    return raw, shapes.shape(load_profile(env), raw)


@pytest.mark.parametrize("env", shapes.SHIPPED)
def test_a_shape_keeps_the_profile_and_moves_only_what_must_move(env):
    raw, shaped = _shape(env)
    for key in ("name", "topology", "cluster", "artifacts", "services", "dns", "rollout"):
        assert shaped.get(key) == raw.get(key) or key == "dns", key
    assert [r["name"] for r in shaped["dns"]["records"]] == [r["name"] for r in raw["dns"]["records"]]
    for before, after in zip(raw["hosts"], shaped["hosts"], strict=True):
        assert {k: v for k, v in after.items() if k != "address"} == {k: v for k, v in before.items() if k != "address"}
        assert ipaddress.ip_address(after["address"]) in ipaddress.ip_network(shaped["network"]["node_cidr"])
    assert ipaddress.ip_network(shaped["network"]["node_cidr"]).subnet_of(shapes.LANE_BLOCKS[env])
    assert shaped["lane"] == {"shaped_from": env}
    connection = shaped["connection"]
    assert (connection["kind"], connection["user"], connection["sudo"]) == ("ssh", "ops", True)
    assert connection["identity_file"] == f".secrets/lane-{env}/ssh/id_ed25519"
    # Every value is the lane's own: nothing read from the environment's variables or files.
    assert set(shaped["secrets"]) == set(raw["secrets"])
    assert all(set(source) <= {"generate", "stored"} for source in shaped["secrets"].values())
    assert shaped["secrets"]["openbao_init"] == {"stored": True}
    assert shaped["roles"]["common"]["time_sync"] == {"servers": [], "control_clock": False}
    # Nothing outside this machine: the backup endpoint is a profile host or the lane's gateway.
    addresses = {host["address"] for host in shaped["hosts"]} | {
        "172.30.80.1",
        "172.30.84.1",
        "172.30.88.1",
        "172.30.92.1",
    }
    assert shaped["backup"]["endpoint"].split("//")[1].split(":")[0] in addresses
    assert raw["hosts"][0]["address"] not in yaml.safe_dump(shaped)


def test_dev_keeps_its_object_store_endpoint_on_the_moved_host():
    _, shaped = _shape("dev")
    assert shaped["backup"]["endpoint"] == "http://172.30.80.10:8333"
    assert shaped["hosts"][0]["address"] == "172.30.80.10"


def test_prod_keeps_three_servers_a_data_host_and_five_rings():
    _, shaped = _shape("prod")
    groups = [host["groups"] for host in shaped["hosts"]]
    assert groups.count(["rke2_servers"]) == 3 and groups.count(["data"]) == 1
    assert sorted({host.get("ring") for host in shaped["hosts"] if "ring" in host}) == [0, 1, 2, 3, 4]
    assert shaped["network"]["node_cidr"] == "172.30.92.0/22"
    assert shaped["hosts"][4]["address"] == "172.30.93.1"


def test_a_written_shape_validates_and_keeps_its_secrets_apart(tmp_path, monkeypatch):
    monkeypatch.setattr(shapes, "LANES_DIR", tmp_path)
    profile = load_profile(shapes.write_shape("staging"))
    assert profile.name == "staging" and profile.secret_scope == "lane-staging"
    assert load_profile("staging").secret_scope == "staging"
    inventory = (tmp_path / "staging" / "staging.py").read_text()
    assert "load_groups(" in inventory and str(tmp_path / "staging" / "staging.yml") in inventory
    with pytest.raises(LaneError, match="no shipped profile 'local'"):
        shapes.write_shape("local")
