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
    """The value each probe command prints (one line, whitespace folded), by probe key."""

    default = dict

    def command(self, probes: tuple[tuple[str, str], ...]) -> str:
        return "; ".join(
            f"printf '%s\\t' {shlex.quote(key)}; {{ {command} ; }} 2>/dev/null | tr -s '\\n\\t ' '   ' ; echo"
            for key, command in probes
        )

    def process(self, output: list[str]) -> dict[str, str]:
        values = {}
        for line in output:
            key, _, value = line.partition("\t")
            values[key] = value.strip()
        return values


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

def file_probe(path: str, content: str, mode: str = "644", user: str = "root", group: str = "root") -> Probe:
    q = shlex.quote(path)
    return Probe(f"file:{path}", f"sha1sum < {q} | cut -d' ' -f1; stat -c '%a %U %G' {q}",
                 f"{sha1(content)} {mode} {user} {group}")


def block_probe(path: str, lines: list[str], marker: str) -> Probe:
    begin, end = (shlex.quote(marker.format(mark=m)) for m in ("BEGIN", "END"))
    awk = f"awk -v b={begin} -v e={end} '$0==e{{f=0}} f{{print}} $0==b{{f=1}}' {shlex.quote(path)}"
    return Probe(f"block:{path}", f"{awk} | sha1sum | cut -d' ' -f1", sha1("".join(f"{line}\n" for line in lines)))


def sysctl_probe(key: str, value: str) -> Probe:
    return Probe(f"sysctl:{key}", f"cat /proc/sys/{key.replace('.', '/')}", " ".join(str(value).split()))


def packages_probe(packages: list[str]) -> Probe:
    names = " ".join(shlex.quote(p) for p in packages)
    return Probe("packages", f"dpkg-query -W -f='${{db:Status-Abbrev}}\\n' {names} | grep -c '^ii'", str(len(packages)))


def service_probe(service: str, enabled: bool = True) -> Probe:
    q = shlex.quote(service)
    if enabled:
        return Probe(f"service:{service}", f"systemctl is-active {q}; systemctl is-enabled {q}", "active enabled")
    return Probe(f"service:{service}", f"systemctl is-active {q}", "active")


def command_probe(key: str, command: str, wanted: str) -> Probe:
    return Probe(key, command, wanted)
