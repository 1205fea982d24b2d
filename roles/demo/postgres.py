"""The demo baseline's PostgreSQL part: each baseline database kept as a template database beside the live
one (`NAME__baseline`: a template, no connections allowed), and a reset that copies it into `NAME__restoring`,
proves the copy's content checksums against the capture's, and swaps it in with roles/postgres's swap (the
live database renamed aside in one transaction, dropped only after). Copying from a template nobody may
connect to cannot meet "source database is being accessed by other users", and the live database is never
dropped before its replacement is in place: the drop-then-create race of reconnecting pools cannot arise."""

from __future__ import annotations

import shlex
import time

from gpuaas.backup.service import RestoreRefused, ServiceHost, differences
from gpuaas.backup.transport import HostCommandError
from roles.demo.baseline import Database, LoadedBaseline
from roles.postgres.backup import (
    PREVIOUS,
    STAGING,
    beside,
    create_beside_sql,
    drop,
    existing,
    ident,
    literal,
    sql,
    swap_sql,
)
from roles.postgres.config import settings_for

TEMPLATE, CAPTURING = "__baseline", "__capturing"
#: A swap is tried this many times: a session that reconnects between its end and the rename fails one.
SWAP_ATTEMPTS = 5
SESSION_END_WAIT_MS = 10_000

#: One SELECT per user table, each printing `schema.table=ROWS MD5`: the MD5 of the sums of two 64-bit
#: hashes of each row's text form (PostgreSQL's own text hash, as hash partitioning keeps on disk, with two
#: seeds). A sum does not depend on the order rows come back in, so nothing is sorted, and no text grows
#: with the table.
CHECKSUMS = r"""
SELECT format('SELECT %L || ''='' || count(*) || '' '' || md5(coalesce(sum(hashtextextended(r, 0)), 0) || '':'' '
              '|| coalesce(sum(hashtextextended(r, 1)), 0)) FROM (SELECT t::text AS r FROM %I.%I t) AS rows',
              format('%I.%I', n.nspname, c.relname), n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1
\gexec
"""


def template_of(database: str) -> str:
    return beside(database, TEMPLATE)


def checksums(target: ServiceHost, database: str) -> dict[str, str]:
    """{schema.table: "ROWS MD5"} of every user table of `database`."""
    lines = sql(target, CHECKSUMS, f"computing the checksums of {database}", database=database).splitlines()
    return dict(line.rpartition("=")[::2] for line in lines if "=" in line)


def _owner_sql(database: str, owner_sql: str) -> str:
    """The SQL run in a database as its owner role, in one transaction."""
    return f"SET ROLE {ident(database)};\n{owner_sql}\n"


def _swap_in(target: ServiceHost, database: str, copy: str) -> None:
    """`copy` takes `database`'s name (tried again while sessions reconnect), the previous one dropped."""
    for attempt in range(1, SWAP_ATTEMPTS + 1):
        try:
            sql(target, swap_sql(database, copy, beside(database, PREVIOUS)), f"swapping {copy} in for {database}")
            break
        except HostCommandError:
            if attempt == SWAP_ATTEMPTS:
                raise
            time.sleep(0.2 * attempt)
    drop(target, beside(database, PREVIOUS))


def _clear_leftovers(target: ServiceHost, database: str) -> None:
    """A copy an interrupted run left: the staged one is dropped; a previous one only while the live
    database exists (without it, it may be the only copy of the data: refused, naming it)."""
    staged, previous = beside(database, STAGING), beside(database, PREVIOUS)
    found = existing(target, [database, staged, previous, beside(database, CAPTURING)])
    if previous in found and database not in found:
        raise RestoreRefused(
            f"{target.node.name}: postgres: {previous} is there but {database} is not; it may be the only copy "
            f"of {database}'s data, so nothing was reset (rename it back to {database}, or drop it)"
        )
    for leftover in sorted(found - {database}):
        drop(target, leftover)


def load(target: ServiceHost, baseline: LoadedBaseline, database: Database) -> dict[str, str]:
    """The database made exactly the baseline's: its SQL run as the owner in a new copy, swapped in. The
    copy's checksums."""
    name = database.database
    _clear_leftovers(target, name)
    copy = beside(name, STAGING)
    sql(target, create_beside_sql(name, copy), f"creating {copy}")
    try:
        target.shell.run(
            f"runuser -u postgres -- psql -XAtq -1 -v ON_ERROR_STOP=1 -p {_port(target)} -d {copy}",
            f"loading the baseline's {name}",
            input=_owner_sql(name, baseline.sql(database)).encode(),
        )
        found = checksums(target, copy)
    except BaseException:
        drop(target, copy)
        raise
    _swap_in(target, name, copy)
    return found


def _port(target: ServiceHost) -> int:
    return int(settings_for(target.profile).port)


def capture(target: ServiceHost, database: str) -> dict[str, str]:
    """A template copy of the live database as it is now (`NAME__capturing` until `commit`): new sessions
    kept out and the live ones ended for the instant of the copy, then allowed again whatever happened.
    The copy's checksums."""
    _clear_leftovers(target, database)
    copy = beside(database, CAPTURING)
    live = ident(database)
    copy_sql = (
        f"ALTER DATABASE {live} ALLOW_CONNECTIONS false;\n"
        f"SELECT count(pg_terminate_backend(pid, {SESSION_END_WAIT_MS})) FROM pg_stat_activity "
        f"WHERE datname = {literal(database)} AND pid <> pg_backend_pid();\n"
        f"CREATE DATABASE {ident(copy)} TEMPLATE {live} OWNER {live} STRATEGY FILE_COPY;\n"
    )
    reopen = f"ALTER DATABASE {live} ALLOW_CONNECTIONS true;"
    port = _port(target)
    psql = f"runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -p {port} -d postgres"
    # Tried again while a session reconnects between its end and the copy; the database is opened again
    # on every way out.
    target.shell.run(
        f"script=$(cat); status=1; for attempt in 1 2 3 4 5; do "
        f'printf "%s\\n" "$script" | {psql} >/dev/null && {{ status=0; break; }}; sleep 0.3; done; '
        f"echo {shlex.quote(reopen)} | {psql} >/dev/null; exit $status",
        f"copying {database} into its baseline template",
        input=copy_sql.encode(),
    )
    return checksums(target, copy)


def commit(target: ServiceHost, database: str) -> None:
    """The captured copy becomes the baseline template (a template nobody may connect to); the previous
    template is dropped."""
    copy, template = beside(database, CAPTURING), template_of(database)
    sql(
        target,
        f"ALTER DATABASE {ident(copy)} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false;\n"
        f"SELECT format('ALTER DATABASE %I WITH IS_TEMPLATE false', datname) FROM pg_database "
        f"WHERE datname = {literal(template)}\n\\gexec\n"
        f"DROP DATABASE IF EXISTS {ident(template)};\n"
        f"ALTER DATABASE {ident(copy)} RENAME TO {ident(template)};\n",
        f"keeping {template}",
    )


def captured(target: ServiceHost, database: str) -> bool:
    return template_of(database) in existing(target, [template_of(database)])


def reset(target: ServiceHost, database: str, expected: dict[str, str]) -> dict[str, str]:
    """The live database replaced by a copy of its baseline template once the copy's checksums equal the
    capture's (RestoreRefused otherwise, the live database untouched). The copy's checksums."""
    template = template_of(database)
    if not captured(target, database):
        raise RestoreRefused(f"{target.node.name}: postgres: {template} does not exist: capture the baseline first")
    _clear_leftovers(target, database)
    copy = beside(database, STAGING)
    sql(
        target,
        create_beside_sql(database, copy, template=template, file_copy=True),
        f"copying {template} into {copy}",
    )
    try:
        found = checksums(target, copy)
        wrong = differences(expected, found, database)
        if wrong:
            raise RestoreRefused(
                f"{target.node.name}: postgres: the copy of {template} does not match the capture "
                f"({'; '.join(wrong[:5])}); {database} was left as it was"
            )
    except BaseException:
        drop(target, copy)
        raise
    _swap_in(target, database, copy)
    return found
