"""Backup and restore of roles/postgres: every profiled database as a `pg_dump` custom-format archive.

The row counts recorded for a database are taken inside the very snapshot the dump reads (the
snapshot is exported by a session held open for the dump's duration), so a busy database still
yields figures that its restore must match exactly."""

from __future__ import annotations

import shlex
import subprocess

from gpuaas.backup.service import BackupJob, RestoreJob, ServiceHost
from gpuaas.backup.transport import HostCommandError, HostShell, copy_stream
from gpuaas.profile import Profile
from roles.postgres.config import settings_for

SERVICE = "postgres"
#: The services that keep their state in these databases, stopped while it is replaced.
DEPENDANTS = ("temporal", "temporal-server", "keycloak")
END = "--end-of-figures--"
#: Every user table with its exact row count, in one statement.
ROW_COUNTS = (
    "SELECT format('%I.%I', n.nspname, c.relname) || '=' || "
    "(xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), "
    "false, true, '')))[1]::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1;"
)


def applies(profile: Profile) -> bool:
    return bool(settings_for(profile).databases)


def _psql(port: int, database: str, options: str = "") -> str:
    return f"runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -p {int(port)} {options} -d {shlex.quote(database)}"


def _present(target: ServiceHost) -> list[str]:
    """The profiled databases that exist on the host, in profile order."""
    port = settings_for(target.profile).port
    found = target.shell.run(_psql(port, "postgres", "-c 'SELECT datname FROM pg_database'"),
                             "listing the PostgreSQL databases").split()  # fmt: skip
    return [database.name for database in settings_for(target.profile).databases if database.name in found]


def _counts(lines: list[str]) -> dict[str, int]:
    return {table: int(count) for table, _, count in (line.rpartition("=") for line in lines if "=" in line)}


def figures(target: ServiceHost) -> dict:
    """{database: {schema.table: rows}} for every profiled database present."""
    port = settings_for(target.profile).port
    return {name: _counts(target.shell.run(_psql(port, name), f"counting the rows of {name}", input=ROW_COUNTS.encode())
                          .splitlines())  # fmt: skip
            for name in _present(target)}  # fmt: skip


def version(target: ServiceHost) -> str:
    port = settings_for(target.profile).port
    return target.shell.run(_psql(port, "postgres", "-c 'SHOW server_version'"), "reading the version").strip()


class _Snapshot:
    """A session holding a repeatable-read transaction open and its exported snapshot id."""

    def __init__(self, shell: HostShell, port: int, database: str):
        self.process = subprocess.Popen(shell.argv(_psql(port, database)), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        self.database, self.node = database, shell.node.name

    def ask(self, sql: str) -> list[str]:
        self.process.stdin.write(f"{sql}\nSELECT '{END}';\n")
        self.process.stdin.flush()
        lines = []
        while (line := self.process.stdout.readline()) and line.strip() != END:
            lines.append(line.rstrip("\n"))
        if not line:
            raise HostCommandError(f"{self.node}: the snapshot session of {self.database} ended: "
                                   f"{self.process.stderr.read().strip()}")  # fmt: skip
        return lines

    def close(self) -> None:
        try:
            self.process.stdin.write("COMMIT;\n")
            self.process.stdin.close()
        except BrokenPipeError:
            pass
        self.process.wait()


def back_up(job: BackupJob) -> None:
    """Each present database: its row counts and `pg_dump -Fc` from one exported snapshot."""
    port = settings_for(job.profile).port
    counted = {}
    for database in _present(job):
        session = _Snapshot(job.shell, port, database)
        try:
            snapshot = session.ask("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT pg_export_snapshot();")
            counted[database] = _counts(session.ask(ROW_COUNTS))
            dump = f"runuser -u postgres -- pg_dump -p {int(port)} -Fc --snapshot={shlex.quote(snapshot[-1])} " \
                   f"{shlex.quote(database)}"  # fmt: skip
            with job.shell.reader(dump, f"pg_dump of {database}") as stream:
                job.upload(f"{database}.dump", stream)
        finally:
            session.close()
    job.record(version(job), counted)


def restore(job: RestoreJob) -> None:
    """Each database in the set is dropped (its sessions ended), created again owned by its role
    and filled from its archive in one transaction."""
    port = settings_for(job.profile).port
    for name in job.names:
        database = name.removesuffix(".dump")
        quoted = shlex.quote(database)
        job.shell.run(f"runuser -u postgres -- dropdb -p {int(port)} --if-exists --force {quoted} && "
                      f"runuser -u postgres -- createdb -p {int(port)} -O {quoted} {quoted}",
                      f"recreating database {database}")  # fmt: skip
        command = f"runuser -u postgres -- pg_restore -p {int(port)} --exit-on-error --single-transaction " \
                  f"--no-owner --role={quoted} -d {quoted}"  # fmt: skip
        with job.open(name) as archive, job.shell.writer(command, f"pg_restore of {database}") as target:
            copy_stream(archive, target)


def drill(job: RestoreJob) -> dict:
    """Restore each archive into a scratch database (`drill_NAME`) beside the live one, count its
    rows, drop it: the live databases are never touched."""
    port = settings_for(job.profile).port
    found = {}
    for name in job.names:
        database = name.removesuffix(".dump")
        scratch = shlex.quote(f"drill_{database}"[:63])
        job.shell.run(f"runuser -u postgres -- dropdb -p {int(port)} --if-exists --force {scratch} && "
                      f"runuser -u postgres -- createdb -p {int(port)} {scratch}", f"creating {scratch}")  # fmt: skip
        try:
            command = f"runuser -u postgres -- pg_restore -p {int(port)} --exit-on-error --single-transaction " \
                      f"--no-owner -d {scratch}"  # fmt: skip
            with job.open(name) as archive, job.shell.writer(command, f"pg_restore into {scratch}") as target:
                copy_stream(archive, target)
            rows = job.shell.run(_psql(port, f"drill_{database}"[:63]), "counting rows", input=ROW_COUNTS.encode())
            found[database] = _counts(rows.splitlines())
        finally:
            job.shell.run(f"runuser -u postgres -- dropdb -p {int(port)} --if-exists --force {scratch}",
                          f"dropping {scratch}")  # fmt: skip
    return found
