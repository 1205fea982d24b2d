"""The lane's hosts as the tests reach them: over SSH as the operator account, with sudo."""

from __future__ import annotations

import tempfile

import testinfra

from gpuaas.lane.access import config_file
from gpuaas.profile import Profile


def lane_host(profile: Profile, name: str):
    """testinfra's host `name` of the lane `profile`, logged in to with the lane's ssh_config (its key,
    its known_hosts, strict host key checking); commands run through sudo. One SSH connection is
    shared by the commands (ControlMaster; testinfra formats the command with %, hence %%C)."""
    return testinfra.get_host(
        f"ssh://{name}",
        ssh_config=str(config_file(profile)),
        sudo=True,
        controlpath=f"{tempfile.gettempdir()}/gpuaas-testinfra-%%C",
    )
