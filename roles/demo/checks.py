"""roles/demo's checks of a profile: a baseline only where a reset may run, and one that loads."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import ValidationError

from gpuaas.errors import Problem, ProfileError
from gpuaas.profile import Profile
from roles.demo.baseline import load_baseline, settings_for
from roles.demo.settings import RESETTABLE


def problems(profile: Profile) -> Iterator[Problem]:
    try:
        settings = settings_for(profile)
    except ValidationError:
        return  # the profile's own check of roles.demo says why
    if settings.baseline is None:
        return
    if profile.name not in RESETTABLE:
        yield Problem(
            "roles.demo.baseline",
            f"a baseline is reset only in {' and '.join(RESETTABLE)}; {profile.name} may not name one",
        )
        return
    try:
        load_baseline(profile)
    except ProfileError as error:
        for problem in error.problems:
            yield Problem("roles.demo.baseline", f"{error.source}: {problem}")
