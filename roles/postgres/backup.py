"""Backup and restore of roles/postgres: every profiled database as a `pg_dump` custom-format archive.

The row counts recorded for a database are taken inside the very snapshot the dump reads (the
snapshot is exported by a session held open for the dump's duration), so a busy database still
yields figures that its restore must match exactly.

A restore never drops a live database to make room. Each archive is restored into a copy beside its
live database (`NAME__restoring`, owned, granted and configured like the live one), and only once
every copy's stream matched its sha256 and its row counts match the set's does each copy take the
live name: in one transaction, the live database renamed `NAME__previous`, which is dropped once that
committed. A run stopped anywhere before leaves the live databases as they were; the copies it left
are dropped, with a warning, by the next restore. The restore drill stages the same way
(`NAME__drill`) and drops its copies without swapping."""

from __future__ import annotations

import hashlib
import shlex
import subprocess

from pyinfra import logger

from gpuaas.backup.service import BackupJob, RestoreJob, RestoreRefused, ServiceHost, differences
from gpuaas.backup.transport import HostCommandError, HostShell, copy_stream
from gpuaas.profile import Profile
from roles.postgres.checks import dependants
from roles.postgres.config import settings_for

SERVICE = "postgres"
#: The units of the roles that keep their state in these databases (each role's declaration names
#: them), stopped while it is replaced.
DEPENDANTS = dependants()
END = "--end-of-figures--"
#: Every user table with its exact row count, in one statement.
ROW_COUNTS = (
    "SELECT format('%I.%I', n.nspname, c.relname) || '=' || "
    "(xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), "
    "false, true, '')))[1]::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1;"
)
ARCHIVE = ".dump"
#: Suffixes of the copies kept beside a live database while it is restored or drilled.
STAGING, PREVIOUS, DRILL = "__restoring", "__previous", "__drill"
#: PostgreSQL's longest name (NAMEDATALEN - 1 bytes); a longer one is silently cut, so copies are kept within it.
MAX_NAME = 63
#: How long the swap waits for each session of the live database to end once told to, in milliseconds.
SESSION_END_WAIT_MS = 10_000
#: Settings whose stored value is already a quoted list (pg_dump writes these unquoted as well).
LIST_SETTINGS = (
    "search_path",
    "temp_tablespaces",
    "local_preload_libraries",
    "session_preload_libraries",
    "shared_preload_libraries",
    "unix_socket_directories",
)


def applies(profile: Profile) -> bool:
    return bool(settings_for(profile).databases)


def psql(port: int, database: str, options: str = "") -> str:
    return f"runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -p {int(port)} {options} -d {shlex.quote(database)}"


def _present(target: ServiceHost) -> list[str]:
    """The profiled databases that exist on the host, in profile order."""
    port = settings_for(target.profile).port
    found = target.shell.run(
        psql(port, "postgres", "-c 'SELECT datname FROM pg_database'"), "listing the PostgreSQL databases"
    ).split()
    return [database.name for database in settings_for(target.profile).databases if database.name in found]


def counts(lines: list[str]) -> dict[str, int]:
    return {table: int(count) for table, _, count in (line.rpartition("=") for line in lines if "=" in line)}


def figures(target: ServiceHost) -> dict:
    """{database: {schema.table: rows}} for every profiled database present."""
    port = settings_for(target.profile).port
    return {
        name: counts(
            target.shell.run(psql(port, name), f"counting the rows of {name}", input=ROW_COUNTS.encode()).splitlines()
        )
        for name in _present(target)
    }


def version(target: ServiceHost) -> str:
    port = settings_for(target.profile).port
    return target.shell.run(psql(port, "postgres", "-c 'SHOW server_version'"), "reading the version").strip()


class _Snapshot:
    """A session holding a repeatable-read transaction open and its exported snapshot id."""

    def __init__(self, shell: HostShell, port: int, database: str):
        self.process = subprocess.Popen(
            shell.argv(psql(port, database)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.database, self.node = database, shell.node.name

    def ask(self, sql: str) -> list[str]:
        self.process.stdin.write(f"{sql}\nSELECT '{END}';\n")
        self.process.stdin.flush()
        lines = []
        while (line := self.process.stdout.readline()) and line.strip() != END:
            lines.append(line.rstrip("\n"))
        if not line:
            raise HostCommandError(
                f"{self.node}: the snapshot session of {self.database} ended: {self.process.stderr.read().strip()}"
            )
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
            counted[database] = counts(session.ask(ROW_COUNTS))
            dump = (
                f"runuser -u postgres -- pg_dump -p {int(port)} -Fc --snapshot={shlex.quote(snapshot[-1])} "
                f"{shlex.quote(database)}"
            )
            with job.shell.reader(dump, f"pg_dump of {database}") as stream:
                job.upload(f"{database}.dump", stream)
        finally:
            session.close()
    job.record(version(job), counted)


def beside(database: str, suffix: str) -> str:
    """The name of a copy of `database` kept beside it: NAME + suffix, or, when that passes PostgreSQL's
    63 bytes, NAME cut short with 8 hex digits of its sha256, so that two long names never share a copy."""
    name = database + suffix
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(database.encode()).hexdigest()[:8]
    kept = MAX_NAME - len(suffix) - len(digest) - 1
    return f"{database[:kept]}_{digest}{suffix}"


def _copies(database: str) -> list[str]:
    return [beside(database, suffix) for suffix in (STAGING, PREVIOUS, DRILL)]


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql(target: ServiceHost, statements: str, what: str, database: str = "postgres") -> str:
    """Run SQL as postgres, given on standard input (names never reach the shell); its output."""
    return target.shell.run(psql(settings_for(target.profile).port, database), what, input=statements.encode())


def _archives(job: RestoreJob) -> dict[str, str]:
    """{database: archive name} of the set's archives. An archive of a database the profile does not list
    is refused before anything on the host changes: a set never chooses which databases a restore replaces."""
    listed = [database.name for database in settings_for(job.profile).databases]
    clashing = sorted({copy for database in listed for copy in _copies(database)} & set(listed))
    if clashing:
        raise RestoreRefused(
            f"{job.node.name}: postgres: {job.profile.source}: services.postgres.databases lists "
            f"{', '.join(clashing)}, the name a restore gives its copy of another database; "
            "rename it to restore; no database was touched"
        )
    chosen, unknown = {}, []
    for name in job.names:
        database = name.removesuffix(ARCHIVE)
        if name.endswith(ARCHIVE) and database in listed:
            chosen[database] = name
        else:
            unknown.append(repr(name[:80]))
    if unknown:
        raise RestoreRefused(
            f"{job.node.name}: postgres: the set holds {', '.join(unknown)}, not an archive of a "
            f"database that {job.profile.source} lists in services.postgres.databases "
            f"({', '.join(listed)}); a restore replaces only the profile's databases; "
            "no database was touched"
        )
    return chosen


def existing(target: ServiceHost, names: list[str]) -> set[str]:
    """Which of `names` are databases on the host."""
    wanted = ", ".join(literal(name) for name in names)
    listed = sql(target, f"SELECT datname FROM pg_database WHERE datname IN ({wanted});", "listing the databases")
    return set(listed.split())


def drop(target: ServiceHost, database: str) -> None:
    """Drop `database` when it exists, ending its sessions."""
    sql(target, f"DROP DATABASE IF EXISTS {ident(database)} WITH (FORCE);", f"dropping {database}")


def drop_quietly(target: ServiceHost, databases: list[str]) -> None:
    """Drop copies on the way out of a failed run; one that cannot be dropped now is the next run's to clear."""
    for database in databases:
        try:
            drop(target, database)
        except HostCommandError:
            pass


def _clear_leftovers(target: ServiceHost, suffixes: tuple[str, ...]) -> None:
    """Drop the copies a run that was stopped left beside the profiled databases, each with a warning. A
    `__previous` copy goes only while its live database exists: then its swap committed and the live one
    holds the restored data; without it, it is the only copy and the restore stops naming it."""
    live = [database.name for database in settings_for(target.profile).databases]
    copies = {beside(database, suffix): database for database in live for suffix in suffixes}
    found = existing(target, [*copies, *live])
    left = sorted(found & set(copies))
    for copy in left:
        database = copies[copy]
        if copy == beside(database, PREVIOUS) and database not in found:
            raise RestoreRefused(
                f"{target.node.name}: postgres: {copy} is there but {database} is not; it may be "
                f"the only copy of {database}'s data, so nothing was restored (rename it back to "
                f"{database}, or drop it, then restore again)"
            )
    for copy in left:
        database = copies[copy]
        drop(target, copy)
        logger.warning(
            f"{target.node.name}: postgres: dropped {copy}, left beside {database} by an earlier "
            "restore or drill that did not finish"
        )


def create_beside_sql(database: str, copy: str, template: str = "template0", file_copy: bool = False) -> str:
    """psql input that creates `copy` with the live database's owner, encoding, locale, tablespace,
    connection limit, grants, settings and comment (as converge makes a database when there is no live
    one), then prints the copy's owner. It is empty, or a copy of `template` (one of the live database's
    own copies, with its encoding and locale); `file_copy` copies its files whole (STRATEGY FILE_COPY: two
    checkpoints, but no WAL record per block, much quicker for a large template)."""
    live, new, source = literal(database), literal(copy), literal(template)
    strategy = " STRATEGY FILE_COPY" if file_copy else ""
    lists = ", ".join(literal(name) for name in LIST_SETTINGS)
    no_live = f"NOT EXISTS (SELECT FROM pg_database WHERE datname = {live})"
    return f"""
SELECT format('CREATE DATABASE %I OWNER %I TEMPLATE %I ENCODING %L LC_COLLATE %L LC_CTYPE %L TABLESPACE %I '
              'CONNECTION LIMIT %s', {new}, pg_get_userbyid(d.datdba), {source}, pg_encoding_to_char(d.encoding),
              d.datcollate, d.datctype, t.spcname, d.datconnlimit)
       || CASE WHEN d.datlocprovider = 'i' THEN format(' LOCALE_PROVIDER icu ICU_LOCALE %L', d.daticulocale) ELSE '' END
       || '{strategy}'
  FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace WHERE d.datname = {live}
UNION ALL
SELECT format('CREATE DATABASE %I OWNER %I TEMPLATE %I', {new}, {live}, {source}) || '{strategy}' WHERE {no_live}
\\gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC, %I', {new}, pg_get_userbyid(datdba))
  FROM pg_database WHERE datname = {live} AND datacl IS NOT NULL
UNION ALL
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', {new}) WHERE {no_live}
\\gexec
SELECT format('GRANT %s ON DATABASE %I TO %s%s', a.privilege_type, {new},
              CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
              CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
  FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = {live}
\\gexec
SELECT CASE WHEN s.setrole = 0 THEN format('ALTER DATABASE %I SET %I = ', {new}, name)
            ELSE format('ALTER ROLE %I IN DATABASE %I SET %I = ', pg_get_userbyid(s.setrole), {new}, name) END
       || CASE WHEN name IN ({lists}) THEN value ELSE quote_literal(value) END
  FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) AS c,
       LATERAL (SELECT split_part(c, '=', 1) AS name, substr(c, strpos(c, '=') + 1) AS value) AS setting
 WHERE d.datname = {live}
\\gexec
SELECT format('COMMENT ON DATABASE %I IS %L', {new}, c.description)
  FROM pg_shdescription c JOIN pg_database d ON d.oid = c.objoid AND c.classoid = 'pg_database'::regclass
 WHERE d.datname = {live}
\\gexec
SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = {new};
"""


def stage(job: RestoreJob, database: str, archive: str, copy: str) -> dict[str, int]:
    """Create `copy` beside `database` and fill it from the set's `archive` in one transaction; the row
    counts found in it. The archive's stream is closed, and so checked against the manifest's sha256,
    before the rows are counted: what the counts describe is exactly what was verified."""
    port = settings_for(job.profile).port
    owner = sql(job, create_beside_sql(database, copy), f"creating {copy} beside {database}").split()[-1]
    command = (
        f"runuser -u postgres -- pg_restore -p {int(port)} --exit-on-error --single-transaction "
        f"--no-owner --role={shlex.quote(owner)} -d {shlex.quote(copy)}"
    )
    with job.open(archive) as stream, job.shell.writer(command, f"pg_restore into {copy}") as target:
        copy_stream(stream, target)
    return counts(sql(job, ROW_COUNTS, f"counting the rows of {copy}", database=copy).splitlines())


def swap_sql(database: str, copy: str, previous: str) -> str:
    """One server-side block: the live database closed to new sessions and its sessions ended, then, in
    one transaction, live renamed `previous` and `copy` renamed live (opened as the live one was). On any
    failure the renames roll back and the live database is opened again before the error is raised. It
    runs inside the server, so a controller or connection lost meanwhile cannot leave it half done."""
    return f"""
DO $swap$
DECLARE
    live text := {literal(database)};
    staged text := {literal(copy)};
    previous text := {literal(previous)};
    allowed boolean;
    failure text;
BEGIN
    SELECT datallowconn INTO allowed FROM pg_database WHERE datname = live;
    IF allowed IS NULL THEN
        EXECUTE format('ALTER DATABASE %I RENAME TO %I', staged, live);
        RETURN;
    END IF;
    -- Committed at once: a rename needs the database without sessions, and new ones must stay out.
    EXECUTE format('ALTER DATABASE %I ALLOW_CONNECTIONS false', live);
    COMMIT;
    PERFORM pg_terminate_backend(pid, {SESSION_END_WAIT_MS}) FROM pg_stat_activity
      WHERE datname = live AND pid <> pg_backend_pid();
    BEGIN
        EXECUTE format('ALTER DATABASE %I RENAME TO %I', live, previous);
        EXECUTE format('ALTER DATABASE %I RENAME TO %I', staged, live);
        EXECUTE format('ALTER DATABASE %I ALLOW_CONNECTIONS %s', live, allowed::text);
    EXCEPTION WHEN OTHERS THEN
        failure := SQLERRM;
        EXECUTE format('ALTER DATABASE %I ALLOW_CONNECTIONS %s', live, allowed::text);
    END;
    COMMIT;
    IF failure IS NOT NULL THEN
        RAISE EXCEPTION 'the swap of % was rolled back: %', live, failure;
    END IF;
END
$swap$;
"""


def restore(job: RestoreJob) -> dict:
    """Each database of the set restored into a copy beside the live one and checked (its archive's
    sha256, its row counts against the set's), then swapped in; the previous databases are dropped last.
    No live database changes before every copy is proven. Returns the row counts found in the copies."""
    archives = _archives(job)
    _clear_leftovers(job, (STAGING, PREVIOUS))
    staged = [beside(database, STAGING) for database in archives]
    found: dict[str, dict[str, int]] = {}
    try:
        for database, archive in archives.items():
            found[database] = stage(job, database, archive, beside(database, STAGING))
            wrong = differences(job.figures.get(database, {}), found[database], database)
            if wrong:
                raise RestoreRefused(
                    f"{job.node.name}: postgres: the copy of {database} restored from the "
                    f"set does not match the manifest ({'; '.join(wrong)}); "
                    "no database was replaced"
                )
    except BaseException:
        drop_quietly(job, staged)
        raise
    swapped: list[str] = []
    for database in archives:
        try:
            sql(
                job,
                swap_sql(database, beside(database, STAGING), beside(database, PREVIOUS)),
                f"swapping the restored copy of {database} in",
            )
        except BaseException as error:
            drop_quietly(job, staged[len(swapped) :])
            if not swapped:
                raise
            raise HostCommandError(
                f"{error}; already replaced: {', '.join(swapped)}; left as they were: "
                f"{', '.join(list(archives)[len(swapped) :])}"
            ) from None
        swapped.append(database)
    for database in swapped:
        try:
            drop(job, beside(database, PREVIOUS))
        except HostCommandError as error:
            logger.warning(f"{error}; the next restore drops it")
    return found


def drill(job: RestoreJob) -> dict:
    """Each archive restored into a copy beside its live database (`NAME__drill`) the way a restore
    stages it, counted and dropped: the live databases are never touched."""
    archives = _archives(job)
    _clear_leftovers(job, (DRILL,))
    found = {}
    for database, archive in archives.items():
        copy = beside(database, DRILL)
        try:
            found[database] = stage(job, database, archive, copy)
        finally:
            drop_quietly(job, [copy])
    return found
