"""Facts the readback reads on every host: its OS and kernel, and the programs its pinned links point at."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase


class HostIdentity(FactBase):
    """{"os": PRETTY_NAME of /etc/os-release, "kernel": `uname -r`}."""

    def command(self) -> str:
        return '. /etc/os-release 2>/dev/null; printf "os %s\\nkernel %s\\n" "$PRETTY_NAME" "$(uname -r)"'

    def process(self, output: list[str]) -> dict:
        values = dict(line.split(" ", 1) if " " in line else (line, "") for line in output)
        return {key: values.get(key) or None for key in ("os", "kernel")}


class LinkedPrograms(FactBase):
    """Link -> {"target": the file it resolves to, "sha256": that file's sha256} for each of `links`,
    hashed on the host; both None for a link that resolves to no file."""

    default = dict

    def command(self, links: tuple[str, ...]) -> str:
        return " ".join(
            f't=$(readlink -f {shlex.quote(link)} 2>/dev/null); if [ -f "$t" ]; then '
            f'printf "%s %s %s\\n" {shlex.quote(link)} "$t" "$(sha256sum < "$t" | cut -d" " -f1)"; '
            f"else printf '%s - -\\n' {shlex.quote(link)}; fi;"
            for link in links
        )

    def process(self, output: list[str]) -> dict[str, dict]:
        found = {}
        for line in output:
            link, target, digest = (line.rsplit(" ", 2) + ["-", "-"])[:3]
            found[link] = {"target": None if target == "-" else target, "sha256": None if digest == "-" else digest}
        return found
