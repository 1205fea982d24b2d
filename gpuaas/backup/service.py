"""What a service role offers to the backup deploys (its `backup.py`), and the jobs it is handed.

A role's backup module defines:

    SERVICE = "redis"                 the name in object keys and in the manifest
    DEPENDANTS = ("temporal",)        systemd units stopped while it is restored (when present)
    applies(profile) -> bool          whether the profile runs it
    back_up(job: BackupJob)           stream its artifacts with job.upload, then job.record(...)
    figures(target: ServiceHost)      what a restore must find again (row, key, message counts, ...)
    restore(job: RestoreJob)          put the artifacts back (the service is the role's to stop/start);
                                      it may return the figures found in what it put back before the
                                      service resumed its work (else figures() is read afterwards)
    drill(job: RestoreJob) -> dict    restore beside the live service (scratch database or server,
                                      removed afterwards) and return the figures found there

A restore stages what it receives beside the live data and swaps only once the staged copy is proven.
`job.open(name)` raises RestoreRefused when its block ends if what was read differs from the manifest
(sha256), so a role swaps after that block; a role that finds its staged copy's figures differ raises
RestoreRefused itself, before the swap. The engine then reports that the live data was kept.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import IO, Protocol

from pyinfra.api.exceptions import DeployError

from gpuaas.backup.sets import ObjectEntry
from gpuaas.backup.transport import HostShell
from gpuaas.profile import Host, Profile


class RestoreRefused(DeployError):
    """A service's restore stopped before its swap: the staged copy does not match the manifest (the
    sha256 of what was received, or the figures); the message says why. The live data is untouched."""


@dataclass
class ServiceHost:
    """One service on one host: where it runs and how to run commands there."""

    profile: Profile
    node: Host
    shell: HostShell


@dataclass
class BackupJob(ServiceHost):
    """Backing up one service: `upload` streams one artifact into the set, `record` notes the figures."""

    upload: Callable[[str, IO[bytes]], ObjectEntry] = None
    version: str = ""
    figures: dict = field(default_factory=dict)

    def record(self, version: str, figures: dict) -> None:
        self.version, self.figures = version, figures


@dataclass
class RestoreJob(ServiceHost):
    """Restoring one service: `names` are its artifacts in the set, `open(name)` streams one back."""

    names: list[str] = field(default_factory=list)
    open: Callable[[str], AbstractContextManager[IO[bytes]]] = None
    figures: dict = field(default_factory=dict)


class ServiceBackup(Protocol):
    SERVICE: str
    DEPENDANTS: tuple[str, ...]

    def applies(self, profile: Profile) -> bool: ...
    def back_up(self, job: BackupJob) -> None: ...
    def figures(self, target: ServiceHost) -> dict: ...
    def restore(self, job: RestoreJob) -> dict | None: ...
    def drill(self, job: RestoreJob) -> dict: ...


def differences(expected: dict, found: dict, path: str = "") -> list[str]:
    """Where two figure trees differ, as `path: expected X, found Y` lines (empty when they agree)."""
    lines = []
    for key in sorted(set(expected) | set(found), key=str):
        where = f"{path}.{key}" if path else str(key)
        want, have = expected.get(key), found.get(key)
        if isinstance(want, dict) and isinstance(have, dict):
            lines += differences(want, have, where)
        elif want != have:
            lines.append(f"{where}: expected {want}, found {have}")
    return lines
