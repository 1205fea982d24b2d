"""Find the collection's roles: every package under roles/ whose `__init__.py` declares `ROLE`
(gpuaas.role.Role). Catalog, render, docs, the profile's schema and checks, the backup engine and the
deploys loop over what is found here; adding a role is adding its folder."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from pydantic import BaseModel

from gpuaas.role import Phase, Role, Section

ROLES_PACKAGE = "roles"
_PHASES = list(Phase)


@cache
def all_roles() -> tuple[Role, ...]:
    """Every role, in converge order: by phase, then by each role's `order`, then by name."""
    package = importlib.import_module(ROLES_PACKAGE)
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        if not info.ispkg:
            continue
        declared = getattr(importlib.import_module(f"{ROLES_PACKAGE}.{info.name}"), "ROLE", None)
        if isinstance(declared, Role):
            found.append(declared)
    return tuple(sorted(found, key=lambda role: (_PHASES.index(role.phase), role.order, role.name)))


def role_named(name: str) -> Role:
    return next(role for role in all_roles() if role.name == name)


def roles_in(phase: Phase) -> tuple[Role, ...]:
    return tuple(role for role in all_roles() if role.phase is phase)


def settings_models(section: Section) -> dict[str, type[BaseModel]]:
    """Role name -> settings model, for the roles whose settings live in `section`."""
    return {role.name: role.settings for role in all_roles() if role.section is section and role.settings}


def backed_up() -> tuple[Role, ...]:
    """The roles that keep state in a backup set, in restore order (the databases others use first)."""
    return tuple(role for role in all_roles() if role.backup)
