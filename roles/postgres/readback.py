"""What roles/postgres reads back from the current host: PostgreSQL's version, from the running server."""

from __future__ import annotations

from pyinfra import host

from gpuaas.profile import Host, Profile
from roles.postgres.facts import PostgresVersion


def read_back(profile: Profile, node: Host) -> dict | None:
    return {"version": host.get_fact(PostgresVersion, port=profile.services.postgres.port)}
