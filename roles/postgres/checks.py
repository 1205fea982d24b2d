"""roles/postgres's checks of a profile: its databases' names, and the databases other roles keep their
state in (each role says which in its declaration)."""

from __future__ import annotations

from collections.abc import Iterator

from gpuaas.discovery import all_roles
from gpuaas.errors import Problem
from gpuaas.profile import Profile

#: Databases every PostgreSQL cluster has: a profile's own database may not take their names.
RESERVED_DATABASES = ("postgres", "template0", "template1")


def problems(profile: Profile) -> Iterator[Problem]:
    yield from _names(profile)
    yield from _clients(profile)


def _names(profile: Profile) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for i, database in enumerate(profile.services.postgres.databases):
        path = f"services.postgres.databases[{i}].name"
        if database.name in seen:
            yield Problem(path, f"services.postgres.databases[{seen[database.name]}] has the same name")
        seen.setdefault(database.name, i)
        if database.name in RESERVED_DATABASES or database.name.startswith("pg_"):
            yield Problem(
                path,
                f"is reserved by PostgreSQL ({', '.join(RESERVED_DATABASES)}, and pg_ for roles); choose another name",
            )


def _clients(profile: Profile) -> Iterator[Problem]:
    """Each database an enabled role keeps its state in is one of services.postgres.databases."""
    present = {database.name for database in profile.services.postgres.databases}
    for role in all_roles():
        settings = role.settings_of(profile)
        for need in role.databases:
            if settings is not None and need.used(settings) and getattr(settings, need.field) not in present:
                yield Problem(
                    f"{role.section.value}.{role.name}.{need.field}", "names no database of services.postgres.databases"
                )


def dependants() -> tuple[str, ...]:
    """The units of the roles that keep their state in Postgres, stopped while it is restored."""
    return tuple(dict.fromkeys(unit for role in all_roles() for need in role.databases for unit in need.stop))
