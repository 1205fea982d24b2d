"""Facts roles/postgres reads: host memory, the databases and roles present, the running version."""

from __future__ import annotations

from pyinfra.api import FactBase

PSQL = "runuser -u postgres -- psql -XAt"


class MemoryMB(FactBase):
    """Total host memory in MB (from /proc/meminfo)."""

    def command(self) -> str:
        return "awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo"

    def process(self, output: list[str]) -> int:
        return int(output[0])


class PostgresObjects(FactBase):
    """Login roles and databases present, as {"roles": [...], "databases": [...]}; empty before install."""

    default = dict

    def command(self, port: int) -> str:
        query = (
            "SELECT 'role:' || rolname FROM pg_roles WHERE rolcanlogin "
            "UNION ALL SELECT 'database:' || datname FROM pg_database"
        )
        return f'{PSQL} -p {int(port)} -c "{query}" 2>/dev/null || true'

    def process(self, output: list[str]) -> dict[str, list[str]]:
        objects: dict[str, list[str]] = {"roles": [], "databases": []}
        for line in output:
            kind, _, name = line.partition(":")
            if kind in ("role", "database"):
                objects[kind + "s"].append(name)
        return objects


class PostgresVersion(FactBase):
    """`SELECT version()` of the running server, or None when it does not answer."""

    def command(self, port: int) -> str:
        return f"{PSQL} -p {int(port)} -c 'SELECT version()' 2>/dev/null || true"

    def process(self, output: list[str]) -> str | None:
        return output[0] if output and output[0].startswith("PostgreSQL") else None
