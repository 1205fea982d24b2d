"""What a run tells the operator once, however many hosts it runs on: the parts of the environment it
leaves off, and why."""

from __future__ import annotations

from pyinfra import logger

from gpuaas.profile import Profile, required_artifacts

_told: set[str] = set()


def not_deployed(what: str, reason: str) -> None:
    """Say once per run that `what` is not deployed, and why."""
    if what in _told:
        return
    _told.add(what)
    logger.warning(f"{what} is not deployed: {reason}")


def service_enabled(profile: Profile, service: str, title: str) -> bool:
    """Whether the profile's `services.SERVICE` is on; when it is off, say so once, with what it still
    lacks (the artifacts it needs that are not pinned)."""
    settings = getattr(profile.services, service)
    if getattr(settings, "enabled", True):
        return True
    reason = f"services.{service}.enabled is false in {profile.source}"
    missing = [name for name in required_artifacts(settings).values() if name not in profile.artifacts]
    if missing:
        reason += f"; it needs artifacts {', '.join(missing)} pinned first"
    not_deployed(title, reason)
    return False
