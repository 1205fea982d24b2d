"""Deploy of roles/postgres: the server, its tuning and access rules, and the platform's databases."""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import server, systemd

from gpuaas.context import current_node, current_profile
from gpuaas.managed import Applied, Item, converge
from roles.postgres.config import ROLES_SQL, paths, settings_for
from roles.postgres.facts import PostgresObjects
from roles.postgres.settings import PostgresSettings
from roles.postgres.state import desired, unit_name


def file_item(items: Sequence[Item], path: str) -> Item:
    return next(item for item in items if item.name == f"file {path}")


def roles_or_databases_missing(settings: PostgresSettings) -> bool:
    """Whether a profiled login role or database is not on the server (read when the step runs)."""
    present = host.get_fact(PostgresObjects, port=settings.port)
    return any(
        db.name not in present.get("roles", []) or db.name not in present.get("databases", [])
        for db in settings.databases
    )


@deploy("PostgreSQL")
def postgres() -> None:
    profile, node = current_profile(), current_node()
    settings, unit = settings_for(profile), unit_name(profile)
    items = desired(profile, node)
    hba, sql = file_item(items, paths(settings)["hba"]), file_item(items, ROLES_SQL)

    def steps(applied: Applied) -> None:
        """Reload the server when its access rules changed; run the roles SQL when it changed or a role
        or database is missing (a dropped database comes back)."""
        systemd.service(
            name=f"Ensure {unit} uses its access rules", service=unit, reloaded=True, _if=applied[hba].did_change
        )
        server.shell(
            name="Ensure the platform's roles and databases exist",
            commands=[f"runuser -u postgres -- psql -X -q -p {settings.port} -f {ROLES_SQL}"],
            _if=lambda: applied[sql].did_change() or roles_or_databases_missing(settings),
        )

    converge("PostgreSQL", items, steps)
