"""Jinja2 filters the role templates use; one implementation for pyinfra's templating and for Ansible."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def sysctl_lines(params: Mapping[str, Any]) -> str:
    """`{"net.ipv4.ip_forward": 1}` -> `net.ipv4.ip_forward = 1`, one per line, sorted by key."""
    return "\n".join(f"{key} = {params[key]}" for key in sorted(params))


def hosts_lines(entries: Iterable[Mapping[str, Any]]) -> str:
    """`[{"address": "10.0.0.1", "names": ["a", "a.example"]}]` -> `10.0.0.1 a a.example`, aligned."""
    rows = [(str(e["address"]), " ".join(e["names"])) for e in entries]
    width = max((len(address) for address, _ in rows), default=0)
    return "\n".join(f"{address.ljust(width)} {names}" for address, names in rows)


def yes_no(value: Any) -> str:
    """Python truth -> the `yes`/`no` systemd and many daemons expect."""
    return "yes" if value else "no"


def quote_words(values: Iterable[Any]) -> str:
    """`["a b", "c"]` -> `"a b" "c"` for a shell-style variable in /etc/default files."""
    return " ".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)


FILTERS = {
    "sysctl_lines": sysctl_lines,
    "hosts_lines": hosts_lines,
    "yes_no": yes_no,
    "quote_words": quote_words,
}
