"""What roles/postgres reads back from the current host: PostgreSQL's version from the running server,
and whether every database the profile declares is there (its schema status)."""

from __future__ import annotations

from pyinfra import host

from gpuaas.profile import Host, Profile
from roles.postgres.facts import PostgresObjects, PostgresVersion


def read_back(profile: Profile, node: Host) -> dict | None:
    settings = profile.services.postgres
    version = host.get_fact(PostgresVersion, port=settings.port)
    present = set(host.get_fact(PostgresObjects, port=settings.port).get("databases", []))
    missing = [database.name for database in settings.databases if database.name not in present]
    if version is None:
        status, message = "failed", "the server does not answer"
    elif missing:
        status, message = "drift", f"databases missing: {', '.join(missing)}"
    else:
        status, message = "ok", f"{version.split(' on ')[0]}; databases {', '.join(d.name for d in settings.databases)}"
    return {"version": version, "databases": sorted(present), "status": status, "message": message}
