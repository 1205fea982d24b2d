"""What a run tells the operator once, however many hosts it runs on: the parts of the environment it
leaves off, and why."""

from __future__ import annotations

from pyinfra import logger

_told: set[str] = set()


def not_deployed(what: str, reason: str) -> None:
    """Say once per run that `what` is not deployed, and why."""
    if what in _told:
        return
    _told.add(what)
    logger.warning(f"{what} is not deployed: {reason}")
