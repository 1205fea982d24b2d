"""Verify a role's whole desired state in one round trip per host.

A role lists probes (a key, a shell command that prints the actual value, the value wanted). The
StateProbe fact runs them all in one command; when every value matches, the role is in place and
its operations need not each read their own facts. When anything differs, the role runs its
operations, which find and change exactly what differs.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import FactBase, operation


@dataclass(frozen=True)
class Probe:
    key: str
    command: str
    wanted: str


class StateProbe(FactBase):
    """The output of each probe command (lines joined by spaces, whitespace folded), by probe key."""

    default = dict
    marker = "@@gpuaas-probe "

    def command(self, probes: tuple[tuple[str, str], ...]) -> str:
        # One shell, no pipeline per probe: on 24 hosts at once the processes each probe starts
        # inside the host are what the run costs.
        # A probe that fails (a file not there yet) reports what it printed; the fact itself succeeds.
        return (
            "; ".join(
                f"echo {shlex.quote(self.marker + key)}; {{ {command} ; }} 2>/dev/null" for key, command in probes
            )
            + "; true"
        )

    def process(self, output: list[str]) -> dict[str, str]:
        values: dict[str, list[str]] = {}
        current = None
        for line in output:
            if line.startswith(self.marker):
                current = line[len(self.marker) :]
                values[current] = []
            elif current is not None:
                values[current].append(line)
        return {key: " ".join(" ".join(lines).split()) for key, lines in values.items()}


@operation()
def state_verified(checks: int):
    """
    Report a role whose every probe matched: changes nothing.

    + checks: how many probes were verified
    """
    host.noop(f"all {checks} checks match")
    yield from ()


def drift(probes: list[Probe]) -> list[str]:
    """Run every probe on the current host in one command; the keys that differ from what is wanted."""
    actual = host.get_fact(StateProbe, probes=tuple((p.key, p.command) for p in probes))
    return mismatches(probes, actual)


def mismatches(probes: list[Probe], actual: dict[str, str]) -> list[str]:
    """Keys whose actual value differs from the wanted one (missing counts as different)."""
    return [p.key for p in probes if actual.get(p.key) != p.wanted]


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


# --- probe builders, one per kind of state --------------------------------------------------------


def files_probe(files: dict[str, tuple[str, str]], user: str = "root", group: str = "root") -> Probe:
    """Content and mode/owner of several files (path -> (content, mode)), read with one sha1sum and one stat."""
    paths = " ".join(shlex.quote(path) for path in files)
    wanted = [f"{sha1(content)} {path}" for path, (content, _) in files.items()]
    wanted += [f"{path} {mode} {user} {group}" for path, (_, mode) in files.items()]
    return Probe("files", f"sha1sum {paths}; stat -c '%n %a %U %G' {paths}", " ".join(wanted))


def block_probe(path: str, lines: list[str], marker: str) -> Probe:
    begin, end = (shlex.quote(marker.format(mark=m)) for m in ("BEGIN", "END"))
    awk = f"awk -v b={begin} -v e={end} '$0==e{{f=0}} f{{print}} $0==b{{f=1}}' {shlex.quote(path)}"
    return Probe(f"block:{path}", f"{awk} | sha1sum", sha1("".join(f"{line}\n" for line in lines)) + " -")


def sysctls_probe(params: dict[str, str]) -> Probe:
    """Live kernel parameters, read with one cat."""
    paths = " ".join(shlex.quote("/proc/sys/" + key.replace(".", "/")) for key in params)
    return Probe("sysctls", f"cat {paths}", " ".join(" ".join(str(v).split()) for v in params.values()))


def packages_probe(packages: list[str]) -> Probe:
    names = " ".join(shlex.quote(p) for p in packages)
    return Probe("packages", f"dpkg-query -W -f='${{db:Status-Abbrev}}\\n' {names} | grep -c '^ii'", str(len(packages)))


def services_probe(running: list[str], enabled: list[str]) -> Probe:
    """Units that must be active, and those that must be enabled, read with two systemctl calls."""
    command = f"systemctl is-active {' '.join(shlex.quote(u) for u in running)}"
    if enabled:
        command += f"; systemctl is-enabled {' '.join(shlex.quote(u) for u in enabled)}"
    return Probe("services", command, " ".join(["active"] * len(running) + ["enabled"] * len(enabled)))


def command_probe(key: str, command: str, wanted: str) -> Probe:
    return Probe(key, command, wanted)
