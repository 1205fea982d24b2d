"""Restores of NATS, Redis and OpenBao refuse artifacts and names their role does not have, naming
them, before any command reaches the host."""

from __future__ import annotations

import io
from contextlib import contextmanager

import pytest
from pydantic import ValidationError

from gpuaas.backup.service import RestoreJob, RestoreRefused
from gpuaas.backup.transport import HostShell
from gpuaas.profile import load_profile
from roles.nats import backup as nats_backup
from roles.nats.settings import NatsSettings
from roles.openbao import backup as openbao_backup
from roles.redis import backup as redis_backup


class _NoHost(HostShell):
    """A shell that records what would have been run instead of running it."""

    def __init__(self, profile, node):
        super().__init__(profile, node)
        self.commands: list[str] = []

    def run(self, command: str, what: str, secret=None, input: bytes = b"") -> str:
        self.commands.append(what)
        raise AssertionError(f"a command reached the host: {what}")

    def argv(self, command: str) -> list[str]:
        self.commands.append(command)
        raise AssertionError("a command reached the host")


def _job(names: list[str], figures: dict, profile=None) -> RestoreJob:
    profile = profile or load_profile("local")
    node = profile.group("data")[0]

    @contextmanager
    def opened(name: str):
        yield io.BytesIO(b"")

    return RestoreJob(profile, node, _NoHost(profile, node), names=names, open=opened, figures=figures)


@pytest.mark.parametrize(
    ("names", "figures", "named"),
    [
        (["../etc.json", "../etc.snapshot"], {"../etc": {}}, "../etc"),
        (["A B.json", "A B.snapshot"], {"A B": {}}, "A B"),
        (["ORDERS.json", "ORDERS.snapshot", "ORDERS.tar"], {"ORDERS": {}}, "ORDERS.tar"),
        (["ORDERS.json", "ORDERS.snapshot"], {"OTHER": {}}, "OTHER"),
        (["ORDERS.json"], {"ORDERS": {}}, "ORDERS"),
    ],
)
def test_a_nats_restore_refuses_streams_it_cannot_name_safely_or_the_set_did_not_count(names, figures, named):
    job = _job(names, figures)
    for action in (nats_backup.restore, nats_backup.drill):
        with pytest.raises(RestoreRefused, match="NATS restore refused \\(nothing was changed\\)") as refused:
            action(job)
        assert named in str(refused.value)
    assert job.shell.commands == []


def test_a_nats_restore_accepts_the_streams_its_manifest_counted():
    job = _job(["ORDERS.json", "ORDERS.snapshot", "EVENTS-2.json", "EVENTS-2.snapshot"], {"ORDERS": {}, "EVENTS-2": {}})
    assert nats_backup.streams_in_set(job) == ["EVENTS-2", "ORDERS"]


def test_a_store_dir_that_would_reach_a_shell_is_refused_by_the_settings_model():
    """The staging directory is derived from store_dir: the schema keeps it a plain absolute path."""
    with pytest.raises(ValidationError) as refused:
        NatsSettings.model_validate({"store_dir": "/var/lib/nats $(reboot)"})
    (problem,) = refused.value.errors()
    assert problem["loc"] == ("store_dir",)
    assert "an absolute path of '/'-separated names" in problem["msg"] and "reboot" not in problem["msg"]


@pytest.mark.parametrize(
    ("names", "figures", "named"),
    [
        (["dump.rdb", "../../etc/shadow"], {"db0": 1}, "../../etc/shadow"),
        (["other.rdb"], {"db0": 1}, "other.rdb"),
        (["dump.rdb"], {"db0; rm -rf /": 1}, "db0; rm -rf /"),
    ],
)
def test_a_redis_restore_refuses_other_artifacts_and_databases(names, figures, named):
    job = _job(names, figures)
    for action in (redis_backup.restore, redis_backup.drill):
        with pytest.raises(RestoreRefused, match="Redis restore refused \\(nothing was changed\\)") as refused:
            action(job)
        assert named in str(refused.value)
    assert job.shell.commands == []


@pytest.mark.parametrize(
    ("names", "figures", "named"),
    [
        (["raft.snap", "keys.json"], {"sealed": False}, "keys.json"),
        (["raft.snap"], {"sealed": False, "token": "x"}, "token"),
        ([], {"sealed": False}, "no raft.snap"),
    ],
)
def test_an_openbao_restore_refuses_other_artifacts_and_figures(names, figures, named):
    job = _job(names, figures)
    for action in (openbao_backup.restore, openbao_backup.drill):
        with pytest.raises(RestoreRefused, match="OpenBao restore refused \\(nothing was changed\\)") as refused:
            action(job)
        assert named in str(refused.value)
    assert job.shell.commands == []


class _Recording(HostShell):
    """A shell that records each command and its standard input instead of running them."""

    def __init__(self, profile, node):
        super().__init__(profile, node)
        self.runs: list[tuple[str, bytes]] = []

    def run(self, command: str, what: str, secret=None, input: bytes = b"") -> str:
        self.runs.append((command, input))
        return ""


def test_a_swap_script_reaches_its_systemd_unit_on_stdin_never_on_the_command_line():
    """systemd expands `${...}` on a unit's command line: a rollback's `${old##*/}` became empty there."""
    profile = load_profile("local")
    node = profile.group("data")[0]
    job = RestoreJob(profile, node, _Recording(profile, node))
    script = 'name=${old##*/}; rm -rf "$live/$name"'
    job.shell.run_detached("gpuaas-nats-swap", script, "swapping")
    [(command, stdin)] = job.shell.runs
    assert "systemd-run" in command and "${" not in command and "$live" not in command
    assert stdin.decode().startswith('rm -f "$0"\n') and script in stdin.decode()
