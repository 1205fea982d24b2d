"""Restores of PostgreSQL, and of Temporal's SQLite file, on the local data host keep the live copy
until the restored one is proven: a stream that changed, breaks half-way or whose figures differ is
refused before the swap with the live rows intact; a restore killed while pg_restore runs leaves the
live database as it was and the next restore clears its leftover; a normal restore brings back the
rows of the set with the owner, grants and settings of the live database, and a converge afterwards
changes nothing. Everything reaches the host over SSH as `ops` with sudo."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest

from gpuaas.backup import engine, store
from gpuaas.backup.service import RestoreJob, RestoreRefused
from gpuaas.backup.sets import list_sets, prefix
from gpuaas.backup.transport import HostCommandError, HostShell
from gpuaas.backup.writer import remove_sets
from gpuaas.profile import REPO_ROOT, load_profile
from roles.postgres import backup as postgres_backup
from roles.temporal import backup as temporal_backup
from tests.local_variant import converge
from tests.streams import BreakingStream

pytestmark = pytest.mark.hosts

DATABASE = "platform"
TABLE = "restore_probe"
#: Enough rows that pg_restore runs for a few seconds (long enough to be killed while it runs).
ROWS = 1_000_000
POSTGRES = f"local-server/{postgres_backup.SERVICE}"
TEMPORAL = f"local-server/{temporal_backup.SERVICE}"


def shell(profile) -> HostShell:
    return HostShell(profile, profile.group("data")[0])


def psql(profile, sql: str, database: str = DATABASE) -> str:
    """SQL as postgres on the data host (on standard input); its unaligned output."""
    command = f"runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d {database}"
    return shell(profile).run(command, "psql", input=sql.encode()).strip()


def probe_rows(profile) -> tuple[int, str]:
    """The probe table's row count and the md5 of its rows in order."""
    found = psql(
        profile, f"SELECT count(*), md5(coalesce(string_agg(id || ':' || payload, ',' ORDER BY id), '')) FROM {TABLE};"
    )
    count, digest = found.split("|")
    return int(count), digest


def databases(profile) -> set[str]:
    return set(psql(profile, "SELECT datname FROM pg_database;", "postgres").split())


def database_state(profile, name: str = DATABASE) -> dict:
    """What a restore must keep of the live database: owner, grants, connection settings, settings."""
    row = psql(
        profile,
        "SELECT pg_get_userbyid(datdba), datacl::text, datallowconn, datconnlimit, "
        "pg_encoding_to_char(encoding), datcollate FROM pg_database "
        f"WHERE datname = '{name}';",
        "postgres",
    )
    settings = psql(
        profile,
        "SELECT coalesce(setrole::regrole::text, '-'), setconfig::text FROM pg_db_role_setting s "
        f"JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = '{name}' ORDER BY 1;",
        "postgres",
    )
    tables = psql(profile, f"SELECT tableowner FROM pg_tables WHERE tablename = '{TABLE}';")
    return {"database": row, "settings": settings, "table_owner": tables}


class Archives:
    """One service's objects of a set, held in memory and opened the way the engine opens them: the
    sha256 of what was read is checked when the block ends. `appended` arrives with bytes added at its
    end (what pg_restore itself may never notice), `breaks` fails half-way like a dropped connection."""

    def __init__(self, profile, set_id: str, service: str):
        self.profile, self.node = profile, profile.group("data")[0]
        manifest = engine.choose_set(profile, set_id)
        base = f"{prefix(manifest.environment, manifest.set_id)}{self.node.name}/{service}/"
        entries = {entry.key.removeprefix(base): entry for entry in manifest.objects if entry.key.startswith(base)}
        s3 = store.client(profile)
        self.sha256 = {name: entry.sha256 for name, entry in entries.items()}
        self.data = {
            name: s3.get_object(Bucket=profile.backup.bucket, Key=entry.key)["Body"].read()
            for name, entry in entries.items()
        }
        self.figures = manifest.services[f"{self.node.name}/{service}"]["figures"]

    def job(self, appended: str = "", breaks: str = "", names: list[str] | None = None) -> RestoreJob:
        @contextmanager
        def opened(name: str):
            data = self.data[name] + (b"\0" * 64 if name == appended else b"")
            stream = io.BytesIO(data)
            if name == breaks:
                stream = BreakingStream(data)
            yield stream
            if hashlib.sha256(data).hexdigest() != self.sha256[name]:
                raise RestoreRefused(f"{name} changed in the bucket while it was being restored")

        return RestoreJob(
            self.profile,
            self.node,
            shell(self.profile),
            names=names or list(self.data),
            open=opened,
            figures=copy.deepcopy(self.figures),
        )


def restore_with_engine(profile, set_id: str, service: str, manifest=None) -> dict:
    manifest = manifest or engine.choose_set(profile, set_id)
    plan = engine.plan_restore(profile, manifest, only=(service,))
    return engine.restore(profile, plan, log=lambda line: None)


def wait_for_host(profile, condition: str, seconds: int = 120) -> None:
    """Wait on the host until the shell test `condition` holds (one SSH command polling there)."""
    shell(profile).run(
        f"for i in $(seq {seconds * 20}); do if {condition}; then exit 0; fi; sleep 0.05; done; exit 1",
        "waiting on the host",
    )


STAGED = postgres_backup.beside(DATABASE, postgres_backup.STAGING)
#: pg_restore filling the staged copy (as postgres: the polling shell, run as root, never matches itself).
PG_RESTORE_RUNNING = f"pgrep -u postgres -f 'pg_restore .*{STAGED}' >/dev/null"


@pytest.fixture(scope="module")
def profile(local_hosts):
    converge(REPO_ROOT / "inventories" / "local.py")
    return load_profile("local")


@pytest.fixture(scope="module")
def backed_up(profile):
    """A set of the Postgres databases whose probe table holds ROWS rows, the platform database given a
    setting and a grant of its own; removed at the end with everything this module added."""
    psql(
        profile,
        f"SET ROLE {DATABASE}; DROP TABLE IF EXISTS {TABLE}; "
        f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY, payload text NOT NULL); "
        f"INSERT INTO {TABLE} SELECT i, md5(i::text) || md5((i * 7)::text) || md5((i * 13)::text) "
        f"FROM generate_series(1, {ROWS}) AS i;",
    )
    psql(
        profile,
        f"ALTER DATABASE {DATABASE} SET work_mem = '12MB'; ALTER DATABASE {DATABASE} CONNECTION LIMIT 150; "
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'restore_reader') THEN "
        "CREATE ROLE restore_reader NOLOGIN; END IF; END $$; "
        f"GRANT CONNECT ON DATABASE {DATABASE} TO restore_reader;",
        "postgres",
    )
    before = probe_rows(profile)
    manifest = engine.back_up(profile, log=lambda line: None, services=(postgres_backup,))
    assert manifest.services[POSTGRES]["figures"][DATABASE][f"public.{TABLE}"] == ROWS
    yield manifest.set_id, before
    psql(profile, f"DROP TABLE IF EXISTS {TABLE};")
    psql(
        profile,
        f"ALTER DATABASE {DATABASE} RESET work_mem; ALTER DATABASE {DATABASE} CONNECTION LIMIT -1; "
        f"REVOKE ALL ON DATABASE {DATABASE} FROM restore_reader; DROP ROLE IF EXISTS restore_reader;",
        "postgres",
    )
    _remove_set(profile, manifest.set_id)


def _remove_set(profile, set_id: str) -> None:
    client = store.client(profile)
    sets = list_sets(client, profile.backup.bucket, profile.name)
    if set_id in sets:
        remove_sets(client, profile.backup.bucket, {set_id: sets[set_id]["keys"]})


def write_after_the_backup(profile) -> tuple[int, str]:
    """Rows the set does not have, and rows it has taken away: what the live database holds now."""
    psql(
        profile,
        f"INSERT INTO {TABLE} VALUES ({ROWS + 1}, 'written after the backup') ON CONFLICT DO NOTHING; "
        f"DELETE FROM {TABLE} WHERE id <= 10;",
    )
    return probe_rows(profile)


def no_copies_left(profile) -> None:
    copies = {
        postgres_backup.beside(DATABASE, suffix)
        for suffix in (postgres_backup.STAGING, postgres_backup.PREVIOUS, postgres_backup.DRILL)
    }
    assert not databases(profile) & copies


def test_a_restore_whose_figures_differ_is_refused_before_the_swap(profile, backed_up):
    set_id, _ = backed_up
    live = write_after_the_backup(profile)
    state = database_state(profile)
    manifest = engine.choose_set(profile, set_id)
    manifest.services[POSTGRES]["figures"][DATABASE][f"public.{TABLE}"] = ROWS + 5
    with pytest.raises(RestoreRefused) as refused:
        restore_with_engine(profile, set_id, "postgres", manifest)
    message = str(refused.value)
    assert f"{DATABASE}.public.{TABLE}: expected {ROWS + 5}, found {ROWS}" in message
    assert "refused before the swap" in message and "no database was replaced" in message
    assert probe_rows(profile) == live and database_state(profile) == state
    no_copies_left(profile)
    # The services the engine stopped for the restore run again.
    assert shell(profile).run("systemctl is-active temporal", "temporal").strip() == "active"


def test_a_stream_that_changed_or_breaks_is_refused_before_the_swap(profile, backed_up):
    set_id, _ = backed_up
    live = write_after_the_backup(profile)
    archives = Archives(profile, set_id, "postgres")
    with pytest.raises(RestoreRefused, match=f"{DATABASE}.dump changed in the bucket"):
        postgres_backup.restore(archives.job(appended=f"{DATABASE}.dump"))
    assert probe_rows(profile) == live
    no_copies_left(profile)
    with pytest.raises(ConnectionResetError, match="the bucket connection dropped"):
        postgres_backup.restore(archives.job(breaks=f"{DATABASE}.dump"))
    assert probe_rows(profile) == live
    no_copies_left(profile)


def test_pg_restore_killed_on_the_host_leaves_the_live_database(profile, backed_up):
    set_id, _ = backed_up
    live = write_after_the_backup(profile)
    archives = Archives(profile, set_id, "postgres")

    def kill_pg_restore() -> None:
        wait_for_host(profile, PG_RESTORE_RUNNING)
        shell(profile).run(
            f"sleep 0.2; kill -9 $(pgrep -u postgres -f 'bin/pg_restore .*{STAGED}')", "killing pg_restore"
        )

    killer = threading.Thread(target=kill_pg_restore)
    killer.start()
    try:
        with pytest.raises(HostCommandError, match=f"pg_restore into {DATABASE}__restoring failed"):
            postgres_backup.restore(archives.job(names=[f"{DATABASE}.dump"]))
    finally:
        killer.join()
    assert probe_rows(profile) == live
    no_copies_left(profile)


def test_a_killed_restore_leaves_the_live_database_and_the_next_one_clears_its_leftover(profile, backed_up, caplog):
    set_id, before = backed_up
    live = write_after_the_backup(profile)
    state = database_state(profile)
    code = (
        "import sys; from tests.test_restore_postgres_hosts import Archives; "
        "from gpuaas.profile import load_profile; from roles.postgres import backup; p = load_profile('local'); "
        "backup.restore(Archives(p, sys.argv[1], 'postgres').job())"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, set_id],
        cwd=REPO_ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_host(profile, PG_RESTORE_RUNNING)
        assert process.poll() is None, "the restore ended before pg_restore could be caught running"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    # pg_restore on the host sees its input end and rolls back; the copy it was filling stays behind.
    wait_for_host(profile, f"! {PG_RESTORE_RUNNING}")
    assert STAGED in databases(profile)
    assert probe_rows(profile) == live and database_state(profile) == state

    with caplog.at_level(logging.WARNING, logger="pyinfra"):
        results = restore_with_engine(profile, set_id, "postgres")
    assert results == {POSTGRES: []}
    assert f"dropped {DATABASE}__restoring, left beside {DATABASE} by an earlier restore" in caplog.text
    assert probe_rows(profile) == before
    no_copies_left(profile)


def test_a_restore_brings_back_the_set_with_the_live_owner_grants_and_settings(profile, backed_up):
    set_id, before = backed_up
    live = write_after_the_backup(profile)
    assert live != before
    state = database_state(profile)
    assert "restore_reader=c/" in state["database"] and "work_mem=12MB" in state["settings"]
    results = restore_with_engine(profile, set_id, "postgres")
    assert results == {POSTGRES: []}
    assert probe_rows(profile) == before  # rows written after the backup are gone, rows deleted since are back
    assert database_state(profile) == state
    no_copies_left(profile)
    # Converge finds the role's whole state (owners of the databases included) in place: one unchanged step.
    operations = converge_operations()
    postgres = [name for name in operations if name.startswith("PostgreSQL |")]
    assert postgres == ["PostgreSQL | Ensure PostgreSQL is in place"], postgres
    assert not operations[postgres[0]]["success"]


def converge_operations() -> dict:
    """The data deploy run again; its operations by name, each with its `success` (changed) count."""
    result = subprocess.run(
        ["pyinfra", "-y", "--json", "inventories/local.py", "deploys/data.py"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {op["name"]: op for op in json.loads(result.stdout)["results"]["operations"]}


# Temporal (dev mode: one SQLite file)


#: Files SQLite itself makes and removes beside its database while Temporal writes.
SQLITE_OWN = ("-journal", "-wal", "-shm")


def temporal_file(profile) -> dict:
    """Inode, owner, mode of the live SQLite file, and the files beside it (but SQLite's own, which come
    and go while Temporal runs)."""
    path = temporal_backup.settings_for(profile).db_file
    found = (
        shell(profile)
        .run(f"stat -c '%i %U:%G %a' {path}; for name in {path}*; do echo \"$name\"; done", "reading Temporal's file")
        .split("\n")
    )
    return {"stat": found[0], "files": sorted(line for line in found[1:] if line and not line.endswith(SQLITE_OWN))}


@pytest.fixture(scope="module")
def temporal_set(profile):
    manifest = engine.back_up(profile, log=lambda line: None, services=(temporal_backup,))
    yield manifest.set_id
    _remove_set(profile, manifest.set_id)


def test_a_temporal_restore_whose_figures_differ_keeps_the_live_file(profile, temporal_set):
    before = temporal_file(profile)
    archives = Archives(profile, temporal_set, "temporal")
    job = archives.job()
    job.figures["namespaces"] = job.figures.get("namespaces", 0) + 3
    with pytest.raises(RestoreRefused, match=r"namespaces: expected \d+, found \d+.* was not replaced"):
        temporal_backup.restore(job)
    assert temporal_file(profile) == before  # the same file, nothing left beside it
    assert shell(profile).run("systemctl is-active temporal", "temporal").strip() == "active"


def test_a_temporal_restore_swaps_the_file_in_and_clears_a_leftover(profile, temporal_set, caplog):
    path = temporal_backup.settings_for(profile).db_file
    before = temporal_file(profile)
    shell(profile).run(f"echo partial > {path}{temporal_backup.STAGING}", "leaving a partial copy behind")
    with caplog.at_level(logging.WARNING, logger="pyinfra"):
        results = restore_with_engine(profile, temporal_set, "temporal")
    assert results == {TEMPORAL: []}
    assert f"removed {path}{temporal_backup.STAGING}" in caplog.text
    after = temporal_file(profile)
    inode, owner_and_mode = before["stat"].split(" ", 1)
    assert after["stat"].split(" ", 1)[1] == owner_and_mode
    assert after["stat"].split()[0] != inode  # a new file, renamed over the live one
    assert not [name for name in after["files"] if name.endswith((".restoring", ".previous", ".drill"))]
    deadline = time.monotonic() + 60
    while shell(profile).run("systemctl is-active temporal || true", "temporal").strip() != "active":
        assert time.monotonic() < deadline, "Temporal did not run again"
        time.sleep(1)
