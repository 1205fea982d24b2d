"""Errors that name the file, the field and the reason."""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra.api.exceptions import DeployError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a profile: where (a dotted field path) and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class ProfileError(Exception):
    """A profile that cannot be used; nothing was contacted or changed."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        super().__init__(self.report())

    def report(self) -> str:
        lines = [f"{self.source}: {problem}" for problem in self.problems]
        count = len(self.problems)
        lines.append(f"{self.source}: {count} problem{'s' if count != 1 else ''}; no host was contacted")
        return "\n".join(lines)


class SecretError(DeployError):
    """A secret reference that cannot be resolved, or whose value is not what its reader expects. Never
    carries the value. (A pyinfra DeployError: pyinfra stops with the message, without a traceback.)"""


def field_path(loc: tuple[str | int, ...]) -> str:
    """Render a pydantic location as `hosts[1].ring`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path
