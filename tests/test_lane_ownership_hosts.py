"""A lane's hosts belong to the checkout that made them: their services hold keys only its secrets have.
Containers of the same names made for another checkout's lane are refused, naming them and changing
nothing, and replaced only when asked."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from gpuaas.lane import LaneError
from gpuaas.lane import hosts as lane_hosts
from gpuaas.profile import REPO_ROOT, load_profile

pytestmark = [pytest.mark.hosts, pytest.mark.apart]

SUBNET = "172.30.79"
NAME = "lane-owner-check"


def container(field: str) -> str:
    return subprocess.run(
        ["docker", "inspect", "-f", field, NAME], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def solo(lane_machine, tmp_path, monkeypatch):
    """A one-host lane of its own (its own subnet and secrets folder), reached with docker exec."""
    raw = yaml.safe_load((REPO_ROOT / "inventories" / "local.yml").read_text())
    raw.update(topology="single-node", connection={"kind": "docker"})
    raw["network"]["node_cidr"] = f"{SUBNET}.0/24"
    raw["hosts"] = [{"name": NAME, "address": f"{SUBNET}.10", "groups": ["rke2_servers", "data"]}]
    raw["dns"]["records"] = [{**record, "target": NAME} for record in raw["dns"]["records"]]
    raw["backup"]["endpoint"] = f"http://{SUBNET}.10:8333"
    (tmp_path / "local.yml").write_text(yaml.safe_dump(raw))
    monkeypatch.setattr(lane_hosts, "GENERATED_DIR", tmp_path / ".secrets")
    profile = load_profile(tmp_path / "local.yml")
    lane_hosts.down(profile)  # what an earlier, interrupted run may have left
    yield profile
    lane_hosts.down(profile)


def test_hosts_of_another_checkouts_lane_are_refused_and_replaced_only_when_asked(solo):
    lane_hosts.up(solo, log=lambda line: None)
    made = container("{{.Id}}")
    assert container('{{index .Config.Labels "gpuaas.lane"}}') == lane_hosts.lane_id(solo)
    assert lane_hosts.running_names(solo) == {NAME}

    # Another checkout: the same profile, but secrets (and so a lane id) of its own.
    lane_hosts.lane_id_file(solo).unlink()
    assert lane_hosts.running_names(solo) == set()
    with pytest.raises(LaneError) as refused:
        lane_hosts.up(solo, log=lambda line: None)
    message = str(refused.value)
    assert message.startswith(f"{NAME}: made for another checkout's local lane, not for this one (.secrets/local/")
    assert "`gpuaas local up --replace` replaces them" in message and "nothing was changed" in message
    assert container("{{.Id}}") == made and container("{{.State.Status}}") == "running"

    told: list[str] = []
    lane_hosts.up(solo, log=told.append, replace=True)
    assert container("{{.Id}}") != made
    assert container('{{index .Config.Labels "gpuaas.lane"}}') == lane_hosts.lane_id(solo)
    assert told[0] == f"Replacing {NAME}: made for another checkout's lane"
    assert lane_hosts.running_names(solo) == {NAME}
    # Hosts this checkout made are never replaced.
    kept = container("{{.Id}}")
    lane_hosts.up(solo, log=lambda line: None, replace=True)
    assert container("{{.Id}}") == kept
