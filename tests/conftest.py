"""Shared fixtures: a valid profile to break, and the local lane's hosts for integration tests."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml

from gpuaas import local_lane
from gpuaas.profile import REPO_ROOT, load_profile


@pytest.fixture(scope="session")
def staging_raw() -> dict:
    return yaml.safe_load((REPO_ROOT / "inventories" / "staging.yml").read_text())


@pytest.fixture
def raw(staging_raw) -> dict:
    """A fresh copy of the staging profile's data, to be broken by a test."""
    return copy.deepcopy(staging_raw)


@pytest.fixture(scope="session")
def local_hosts():
    """The local lane's two systemd containers, up and booted (skipped with the reason without Docker)."""
    if shutil.which("docker") is None or not local_lane.engine_running():
        pytest.skip("no running Docker engine: start one (see README, 'Local lane') to run host tests")
    profile = load_profile("local")
    try:
        local_lane.up(profile, log=lambda line: None)
    except local_lane.LocalLaneError as exc:
        pytest.skip(f"local lane unavailable: {exc}")
    return profile


def write_profile(directory: Path, data: dict, env: str = "staging") -> Path:
    path = directory / f"{env}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
