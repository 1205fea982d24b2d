"""Deploy of roles/postgres: the server, its tuning and access rules, and the platform's databases."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd

from filters.jinja import jinja_env_kwargs
from gpuaas.context import current_node, current_profile
from gpuaas.operations import secret_file, service_running
from gpuaas.probe import in_place
from roles.postgres.config import ROLES_SQL, context, paths, profile_roles_sql, settings_for, templates
from roles.postgres.facts import MemoryMB, PostgresObjects
from roles.postgres.state import probes, unit_name


@deploy("PostgreSQL")
def postgres() -> None:
    profile, node = current_profile(), current_node()
    settings = settings_for(profile)
    if in_place("PostgreSQL", probes(profile, node)):
        return
    unit, memory_mb, sql_text = unit_name(profile), host.get_fact(MemoryMB), profile_roles_sql(profile)
    where, sources = paths(settings), templates()
    data = context(profile, node, memory_mb)

    apt.packages(
        name=f"Ensure PostgreSQL {settings.version} is installed",
        packages=[f"postgresql-{settings.version}"],
        update=True,
        cache_time=3600,
    )
    conf = files.template(
        name=f"Ensure {where['conf']} is rendered",
        src=sources["conf"],
        dest=where["conf"],
        user="postgres",
        group="postgres",
        mode="644",
        jinja_env_kwargs=jinja_env_kwargs(),
        **data,
    )
    hba = files.template(
        name=f"Ensure {where['hba']} is rendered",
        src=sources["hba"],
        dest=where["hba"],
        user="postgres",
        group="postgres",
        mode="640",
        jinja_env_kwargs=jinja_env_kwargs(),
        **data,
    )
    service_running(unit, changed=[conf], ready=f"runuser -u postgres -- pg_isready -q -p {settings.port}")
    systemd.service(name=f"Ensure {unit} uses its access rules", service=unit, reloaded=True, _if=hba.did_change)

    sql = secret_file(
        name=f"Ensure {ROLES_SQL} holds the roles and databases",
        path=ROLES_SQL,
        secret=sql_text,
        mode="600",
        user="postgres",
        group="postgres",
    )

    def roles_or_databases_missing() -> bool:
        present = host.get_fact(PostgresObjects, port=settings.port)
        return any(
            db.name not in present.get("roles", []) or db.name not in present.get("databases", [])
            for db in settings.databases
        )

    server.shell(
        name="Ensure the platform's roles and databases exist",
        commands=[f"runuser -u postgres -- psql -X -q -p {settings.port} -f {ROLES_SQL}"],
        _if=lambda: sql.did_change() or roles_or_databases_missing(),
    )
