"""Verify a role's whole desired state in one round trip per host.

A role lists probes (a key, a shell command that prints the actual value, the value wanted). The
StateProbe fact runs them all in one command; when every value matches, the role is in place and
its operations need not each read their own facts. When anything differs, the role runs its
operations, which find and change exactly what differs.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import FactBase, operation

from gpuaas.facts import FILE_IDENTITY, program_record_path


@dataclass(frozen=True)
class Probe:
    """`command` prints the actual state; it matches `wanted` exactly, or as a regular expression."""

    key: str
    command: str
    wanted: str
    pattern: bool = False

    def matches(self, actual: str | None) -> bool:
        if actual is None:
            return False
        return bool(re.fullmatch(self.wanted, actual)) if self.pattern else actual == self.wanted


class StateProbe(FactBase):
    """The output of each probe command (lines joined by spaces, whitespace folded), by probe key."""

    default = dict
    marker = "@@gpuaas-probe "

    def command(self, probes: tuple[tuple[str, str], ...]) -> str:
        # The probes run at once, each into a file of a directory only the connection's user can read
        # (root's /run under sudo), then their outputs are printed in order, each after its marker
        # on a line of its own. A probe that fails (a file not there yet) reports what it printed;
        # the fact itself succeeds.
        jobs = [f'{{ {command} ; }} > "$d/{index}" 2>/dev/null &' for index, (_, command) in enumerate(probes)]
        # Each output is printed with the shell's own read and printf: no process per probe.
        prints = [f'p {shlex.quote(self.marker + key)} "$d/{index}"' for index, (key, _) in enumerate(probes)]
        return "; ".join(
            [
                "d=$(mktemp -d /run/gpuaas-probe.XXXXXX 2>/dev/null || mktemp -d)",
                "trap 'rm -rf \"$d\"' EXIT",
                "p() { printf '\\n%s\\n' \"$1\"; "
                'while IFS= read -r l || [ -n "$l" ]; do printf \'%s\\n\' "$l"; done < "$2"; }',
                " ".join(jobs) + " wait",
                *prints,
                "true",
            ]
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


#: Answers of probes run ahead (see prefetch), by host name, then by probe key and command.
_ANSWERS: dict[str, dict[tuple[str, str], str]] = {}


def prefetch(groups: list[list[Probe]]) -> None:
    """Run the probes of several roles on the current host in one command (one round trip, every
    probe at once); each role's own check then reads its answers instead of asking the host again."""
    numbered = [(f"{index}:{probe.key}", probe) for index, probes in enumerate(groups) for probe in probes]
    if not numbered:
        return
    actual = host.get_fact(StateProbe, probes=tuple((key, probe.command) for key, probe in numbered))
    answers = _ANSWERS.setdefault(host.name, {})
    for key, probe in numbered:
        answers[(probe.key, probe.command)] = actual.get(key)


def drift(probes: list[Probe]) -> list[str]:
    """Run every probe on the current host in one command (or read the answers prefetch got for
    them); the keys that differ from what is wanted."""
    answers = _ANSWERS.get(host.name, {})
    if probes and all((p.key, p.command) in answers for p in probes):
        actual = {p.key: answers.pop((p.key, p.command)) for p in probes}
    else:
        actual = host.get_fact(StateProbe, probes=tuple((p.key, p.command) for p in probes))
    return mismatches(probes, actual)


def mismatches(probes: list[Probe], actual: dict[str, str]) -> list[str]:
    """Keys whose actual value differs from the wanted one (missing counts as different)."""
    return [p.key for p in probes if not p.matches(actual.get(p.key))]


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


# --- probe builders, one per kind of state --------------------------------------------------------


def files_probe(files: dict[str, tuple[str, str]], user: str = "root", group: str = "root") -> Probe:
    """Content and mode/owner of several files (path -> (content, mode)), read with one sha1sum and one stat."""
    paths = " ".join(shlex.quote(path) for path in files)
    wanted = [f"{sha1(content)} {path}" for path, (content, _) in files.items()]
    wanted += [f"{path} {mode} {user} {group}" for path, (_, mode) in files.items()]
    return Probe("files", f"sha1sum {paths}; stat -c '%n %a %U %G' {paths}", " ".join(wanted))


def owned_files_probe(key: str, files: dict[str, tuple[str, str, str, str]]) -> Probe:
    """Content, mode and owner of files with owners of their own (path -> (content, mode, user, group)).
    A secret's content is only hashed here, on the controller; the probe compares digests."""
    paths = " ".join(shlex.quote(path) for path in files)
    wanted = [f"{sha1(content)} {path}" for path, (content, *_) in files.items()]
    wanted += [f"{path} {mode} {user} {group}" for path, (_, mode, user, group) in files.items()]
    return Probe(key, f"sha1sum {paths}; stat -c '%n %a %U %G' {paths}", " ".join(wanted))


def program_probe(link: str, target: str, sha256: str) -> Probe:
    """`link` points at `target`, whose record (see gpuaas.operations.program_file) holds `sha256` and
    the file's identity as it is now."""
    command = (
        f"readlink {shlex.quote(link)}; cat {shlex.quote(program_record_path(target))}; "
        f"{FILE_IDENTITY} {shlex.quote(target)}"
    )
    return Probe(f"program:{link}", command, rf"{re.escape(target)} {sha256} (\d+ \d+ \d+) \1", pattern=True)


def account_probe(name: str, private_dirs: tuple[str, ...] = ()) -> Probe:
    """A system account `name` and its directories, private to it (0700)."""
    dirs = " ".join(shlex.quote(d) for d in private_dirs)
    command = f"id -un {shlex.quote(name)}" + (f"; stat -c '%a %U %G' {dirs}" if private_dirs else "")
    return Probe(f"account:{name}", command, " ".join([name] + [f"700 {name} {name}"] * len(private_dirs)))


def block_probe(path: str, lines: list[str], marker: str) -> Probe:
    begin, end = (shlex.quote(marker.format(mark=m)) for m in ("BEGIN", "END"))
    awk = f"awk -v b={begin} -v e={end} '$0==e{{f=0}} f{{print}} $0==b{{f=1}}' {shlex.quote(path)}"
    return Probe(f"block:{path}", f"{awk} | sha1sum", sha1("".join(f"{line}\n" for line in lines)) + " -")


def sysctls_probe(params: dict[str, str]) -> Probe:
    """Live kernel parameters, read with the shell's own `read` (no process per parameter)."""
    paths = " ".join(shlex.quote("/proc/sys/" + key.replace(".", "/")) for key in params)
    return Probe(
        "sysctls",
        f'for f in {paths}; do read -r v < "$f"; echo "$v"; done',
        " ".join(" ".join(str(v).split()) for v in params.values()),
    )


def packages_probe(packages: list[str]) -> Probe:
    """Every package installed (dpkg status `ii`), read with one dpkg-query."""
    names = " ".join(shlex.quote(p) for p in packages)
    return Probe("packages", f"dpkg-query -W -f='${{db:Status-Abbrev}}' {names}", " ".join(["ii"] * len(packages)))


def services_probe(running: list[str], enabled: list[str]) -> Probe:
    """Units that must be active, and those that must also be enabled, read with one systemctl."""
    units = list(dict.fromkeys(running + enabled))
    wanted = [
        re.escape("ActiveState=active UnitFileState=") + ("enabled" if unit in enabled else r"\S+") for unit in units
    ]
    names = " ".join(shlex.quote(u) for u in units)
    return Probe("services", f"systemctl show -p ActiveState -p UnitFileState {names}", " ".join(wanted), pattern=True)
