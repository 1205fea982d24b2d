"""Shared fixtures: a valid profile to break, and the local lane's hosts for integration tests."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml

from gpuaas.lane import LaneError, machine
from gpuaas.lane import hosts as lane_hosts
from gpuaas.profile import REPO_ROOT, load_profile


@pytest.fixture(scope="session")
def staging_raw() -> dict:
    return yaml.safe_load((REPO_ROOT / "inventories" / "staging.yml").read_text())


@pytest.fixture
def raw(staging_raw) -> dict:
    """A fresh copy of the staging profile's data, to be broken by a test."""
    return copy.deepcopy(staging_raw)


#: `make test` sets this: there, a host test that cannot reach the lane fails instead of skipping.
REQUIRED = os.environ.get("GPUAAS_HOST_TESTS") == "required"


def _unavailable(reason: str):
    if REQUIRED:
        pytest.fail(f"{reason} (GPUAAS_HOST_TESTS=required)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def lane_machine() -> None:
    """This machine can run lane hosts (skipped with the reason without a Docker engine, except under
    `make test`)."""
    if not machine.engine_running():
        _unavailable("no running Docker engine: `gpuaas local setup` installs and starts one (see README)")


@pytest.fixture(scope="session")
def local_hosts(lane_machine):
    """The local lane's two systemd containers, up, booted and reached over SSH as `ops` with sudo."""
    profile = load_profile("local")
    try:
        lane_hosts.up(profile, log=lambda line: None)
    except LaneError as exc:
        _unavailable(f"local lane unavailable: {exc}")
    return profile


def write_profile(directory: Path, data: dict, env: str = "staging") -> Path:
    path = directory / f"{env}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
