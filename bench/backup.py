"""Benchmark: Postgres backup and restore through gpuaas.backup against pg_dump and a plain upload.

    python bench/backup.py [--size-gb 1.0] [--fresh] [--drop]

Fills a `bench` database of at least --size-gb GiB (pg_database_size) on local-server, reused by the
next run when its size still fits (--fresh rebuilds it, --drop removes it and its role at the end).
Times pg_dump -Fc to the host's disk (A), a plain upload_file of that dump with the backup's S3
client and TransferConfig (B), then the engine's end-to-end backup of `bench` alone and two restores
of that set, each in its own process so that its peak memory is measured: first in place, as the role
restored before it kept the live copy (drop, create, pg_restore; C), then the role's restore beside
the live database, checked, then swapped in. Writes bench/results/backup.json and
bench/results/backup.md. Needs the local lane, up and converged.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gpuaas.backup import store  # noqa: E402
from gpuaas.backup.sets import list_sets  # noqa: E402
from gpuaas.backup.writer import remove_sets  # noqa: E402
from gpuaas.profile import Profile, load_profile, resolve_profile_path  # noqa: E402
from roles.postgres.settings import Database  # noqa: E402

RESULTS = REPO / "bench" / "results"
HOST = "local-server"
DATABASE = "bench"
HOST_DUMP = "/root/bench.dump"
PLAIN_KEY = "bench/plain/bench.dump"
GIB = 1 << 30
MIB = 1 << 20
#: Targets the figures are set next to (reported, never asserted).
RATIO_TARGET = 1.5
RESTORE_RATIO_TARGET = 1.2
MEMORY_TARGET_MIB = 300
#: Generation stops a little past the target: a restored copy packs slightly tighter than the original.
OVERSHOOT = 1.03
#: A database this much larger than asked for is rebuilt rather than reused.
REUSE_SLACK = 1.25
#: First guess of the bytes one `events` row (and its share of the other tables) adds; then measured.
BYTES_PER_ROW = 260
MIN_BATCH_ROWS, MAX_BATCH_ROWS = 20_000, 400_000
RESULT_TAG = "RESULT "


# --- the host ----------------------------------------------------------------------------------------


def host(command: str, input: str = "") -> str:
    """`sh -c COMMAND` as root on local-server; its standard output."""
    done = subprocess.run(
        ["docker", "exec", "-i", HOST, "sh", "-c", command], input=input, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(
            f"docker exec {HOST} sh -c {shlex.quote(command)} failed ({done.returncode}):\n"
            f"{done.stderr.strip()[-3000:]}"
        )
    return done.stdout


def psql(sql: str, database: str = "postgres") -> str:
    return host(f"runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d {shlex.quote(database)}", input=sql)


def database_size() -> int | None:
    """pg_database_size of `bench`, or None when it does not exist."""
    found = psql(f"SELECT pg_database_size(datname) FROM pg_database WHERE datname = '{DATABASE}';").strip()
    return int(found) if found else None


SCHEMA = """
CREATE TABLE accounts (
    id bigint PRIMARY KEY, email text NOT NULL, name text NOT NULL, country char(2) NOT NULL,
    created_at timestamptz NOT NULL, balance numeric(12, 2) NOT NULL, active boolean NOT NULL
);
CREATE TABLE events (
    id bigint PRIMARY KEY, account_id bigint NOT NULL, kind text NOT NULL, created_at timestamptz NOT NULL,
    duration_ms integer NOT NULL, payload text NOT NULL
);
CREATE INDEX events_account_id ON events (account_id);
CREATE TABLE documents (
    id bigint PRIMARY KEY, account_id bigint NOT NULL, title text NOT NULL, body text NOT NULL,
    revision integer NOT NULL, updated_at timestamptz NOT NULL
);
"""

#: One batch: N events, N/10 accounts and N/20 documents from ids after OFFSET. Text is md5 hex (barely
#: compressible), JSON-like payloads, and repeated paragraphs (very compressible); ints, numerics,
#: timestamps and booleans besides.
BATCH = """
INSERT INTO accounts
SELECT i, 'user' || i || '@example.' || (ARRAY['com', 'org', 'net', 'io'])[1 + i % 4],
       initcap(substr(md5(i::text), 1, 6 + i % 5)) || ' ' || initcap(substr(md5((i * 31)::text), 3, 5 + i % 7)),
       (ARRAY['DE', 'FR', 'US', 'JP', 'BR', 'IN', 'NL', 'SE'])[1 + i % 8],
       timestamptz '2019-01-01' + i * interval '7 seconds', round((random() * 10000)::numeric, 2), i % 11 <> 0
FROM generate_series({offset} / 10 + 1, ({offset} + {rows}) / 10) AS i;
INSERT INTO events
SELECT i, 1 + (random() * ({offset} + {rows}) / 10)::bigint,
       (ARRAY['login', 'logout', 'view', 'click', 'purchase', 'refund', 'error'])[1 + (random() * 6)::int],
       timestamptz '2024-01-01' + i * interval '1 second' + random() * interval '1 hour', (random() * 5000)::int,
       format('{{"ip":"10.%s.%s.%s","session":"%s","path":"/api/v1/%s/%s","agent":"%s"}}',
              i % 256, (i / 256) % 256, (random() * 255)::int, md5(random()::text),
              (ARRAY['jobs', 'nodes', 'images', 'quotas'])[1 + i % 4], substr(md5(i::text), 1, 12),
              (ARRAY['curl/8.5', 'Mozilla/5.0 (X11; Linux x86_64)', 'python-httpx/0.27',
                     'Go-http-client/2.0'])[1 + i % 4])
FROM generate_series({offset} + 1, {offset} + {rows}) AS i;
INSERT INTO documents
SELECT i, 1 + (random() * ({offset} + {rows}) / 10)::bigint, 'Report ' || substr(md5(i::text), 1, 10),
       repeat('The job finished on node ' || (i % 97) || ' after ' || (i % 3600) || ' seconds. ', 3 + i % 12)
           || md5(random()::text) || ' ' || md5(random()::text) || ' ' || md5((i * 7)::text),
       1 + i % 9, timestamptz '2023-06-01' + i * interval '13 seconds'
FROM generate_series({offset} / 20 + 1, ({offset} + {rows}) / 20) AS i;
"""


def generate(target: int, fresh: bool) -> dict:
    """Make `bench` at least `target` bytes: reused as it is when its size fits, topped up when it is
    too small, rebuilt when it is much larger or --fresh."""
    start = time.perf_counter()
    size = database_size()
    if size is not None and (fresh or size > target * REUSE_SLACK):
        psql(f"DROP DATABASE {DATABASE} WITH (FORCE);")
        size = None
    if size is not None and size >= target:
        return {"reused": True, "seconds": 0.0, "batches": 0}
    # restore() recreates the database owned by a role of its own name, as converge makes for each
    # profiled database; the benchmark's is a role without login.
    psql(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{DATABASE}') THEN "
        f"CREATE ROLE {DATABASE} NOLOGIN; END IF; END $$;"
    )
    if size is None:
        psql(f"CREATE DATABASE {DATABASE} OWNER postgres;")
        psql(SCHEMA, DATABASE)
        size = database_size()
    offset = int(psql("SELECT coalesce(max(id), 0) FROM events;", DATABASE).strip())
    per_row, batches = BYTES_PER_ROW, 0
    while size < target * OVERSHOOT:
        rows = max(MIN_BATCH_ROWS, min(MAX_BATCH_ROWS, int((target * OVERSHOOT - size) / per_row) + 1))
        rows -= rows % 20
        psql(BATCH.format(offset=offset, rows=rows), DATABASE)
        grown = database_size()
        per_row = max(50, (grown - size) / rows)
        offset, size, batches = offset + rows, grown, batches + 1
        print(f"  generate: {offset} events, {size / MIB:.0f} MiB", file=sys.stderr)
    # Serial: a parallel vacuum asks for more shared memory than the container's /dev/shm holds.
    psql("VACUUM (ANALYZE, PARALLEL 0);", DATABASE)
    return {"reused": False, "seconds": round(time.perf_counter() - start, 1), "batches": batches}


# --- the steps that run in their own process ---------------------------------------------------------


def bench_profile() -> Profile:
    """The local profile with `bench` as its only Postgres database (same name, bucket and hosts)."""
    profile = load_profile(resolve_profile_path("local"))
    services = profile.services
    postgres = services.postgres.model_copy(
        update={"databases": [Database(name=DATABASE, password="secret:pg_platform_password")]}
    )
    return profile.model_copy(update={"services": services.model_copy(update={"postgres": postgres})})


def restore_in_place(job) -> None:
    """C: how roles/postgres restored before it kept the live copy: each database dropped, created again
    and filled by pg_restore in one transaction (the engine counts its rows afterwards)."""
    from gpuaas.backup.transport import copy_stream
    from roles.postgres.config import settings_for

    port = settings_for(job.profile).port
    for name in job.names:
        quoted = shlex.quote(name.removesuffix(".dump"))
        job.shell.run(
            f"runuser -u postgres -- dropdb -p {port} --if-exists --force {quoted} && "
            f"runuser -u postgres -- createdb -p {port} -O {quoted} {quoted}",
            f"recreating {quoted}",
        )
        command = (
            f"runuser -u postgres -- pg_restore -p {port} --exit-on-error --single-transaction --no-owner "
            f"--role={quoted} -d {quoted}"
        )
        with job.open(name) as archive, job.shell.writer(command, f"pg_restore of {quoted}") as target:
            copy_stream(archive, target)


def step(name: str, argument: str) -> dict:
    """Run in a child process: one step, its own wall time (after imports) and peak memory."""
    from gpuaas.backup import engine
    from roles.postgres import backup as postgres_backup

    if name == "restore_in_place":
        kept = ("SERVICE", "DEPENDANTS", "applies", "back_up", "figures", "drill")
        in_place = types.SimpleNamespace(
            restore=restore_in_place, **{key: getattr(postgres_backup, key) for key in kept}
        )
        engine.service_parts = lambda: (in_place,)

    profile = bench_profile()
    out: dict = {}

    def log(line: str) -> None:
        if line.startswith("backup set ") and line.endswith(" started"):
            out["set_id"] = line.split()[2].rstrip("/").split("/")[-1]
        print(f"  {name}: {line}", file=sys.stderr)

    start = time.perf_counter()
    try:
        if name == "plain":
            s3 = store.client(profile)
            start = time.perf_counter()
            s3.upload_file(argument, profile.backup.bucket, PLAIN_KEY, Config=store.transfer_config(profile))
        elif name == "backup":
            manifest = engine.back_up(profile, log=log, services=(postgres_backup,))
            out["set_id"] = manifest.set_id
            out["objects"] = {entry.key: entry.size for entry in manifest.objects}
        elif name in ("restore", "restore_in_place"):
            manifest = engine.choose_set(profile, argument)
            start = time.perf_counter()
            plan = engine.plan_restore(profile, manifest)
            out["differences"] = engine.restore(profile, plan, log=log)
    except Exception as error:  # reported to the parent, which cleans up and stops
        out["error"] = f"{type(error).__name__}: {error}"
    out["seconds"] = time.perf_counter() - start
    out["peak_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(RESULT_TAG + json.dumps(out), flush=True)
    return out


def high_water_kib(pid: int) -> int:
    """VmHWM of a running process (its peak resident set so far), KiB; 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)


def run_step(name: str, argument: str = "") -> dict:
    """A step in a fresh Python process; its result, with the peak RSS that process reached
    (VmHWM, polled, and getrusage in the child) and the wall time including start-up."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, __file__, "--step", name, "--argument", argument], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    polled = 0
    while process.poll() is None:
        polled = max(polled, high_water_kib(process.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - start
    lines = [line for line in process.stdout.read().splitlines() if line.startswith(RESULT_TAG)]
    if process.returncode != 0 or not lines:
        return {"error": f"the {name} step's process exited with {process.returncode}", "seconds": wall}
    out = json.loads(lines[-1].removeprefix(RESULT_TAG))
    out["process_seconds"] = wall
    out["peak_mib"] = max(polled, out["peak_kib"]) / 1024
    return out


# --- the benchmark -----------------------------------------------------------------------------------


def rate(size: int, seconds: float) -> float:
    return round(size / 1e6 / seconds, 1) if seconds > 0 else 0.0


def figures(out: dict, size: int) -> dict:
    """A step's rounded figures for the results: seconds, MB/s and, when it had its own process, memory."""
    shown = {"seconds": round(out["seconds"], 2), "mb_per_s": rate(size, out["seconds"])}
    if "peak_mib" in out:
        shown["peak_mib"] = round(out["peak_mib"], 1)
        shown["process_seconds"] = round(out["process_seconds"], 2)
    return shown


def cleanup(s3, bucket: str, set_ids: set[str], workdir: Path) -> None:
    s3.delete_object(Bucket=bucket, Key=PLAIN_KEY)
    sets = list_sets(s3, bucket, "local")
    mine = {set_id: sets[set_id]["keys"] for set_id in set_ids if set_id in sets}
    if mine:
        remove_sets(s3, bucket, mine)
    host(f"rm -f {HOST_DUMP}")
    shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--size-gb", type=float, default=1.0, help="size of the bench database, GiB (default 1.0)")
    args.add_argument("--fresh", action="store_true", help="rebuild the bench database even if it fits")
    args.add_argument("--drop", action="store_true", help="drop the bench database and role at the end")
    args.add_argument("--step", help=argparse.SUPPRESS)
    args.add_argument("--argument", default="", help=argparse.SUPPRESS)
    opts = args.parse_args()
    if opts.step:
        step(opts.step, opts.argument)
        return

    profile = bench_profile()
    s3, bucket = store.client(profile), profile.backup.bucket
    target = int(opts.size_gb * GIB)
    print(f"bench database of at least {opts.size_gb} GiB on {HOST}", file=sys.stderr)
    generated = generate(target, opts.fresh)
    size = database_size()
    workdir = Path(tempfile.mkdtemp(prefix="gpuaas-bench-backup-"))
    set_ids: set[str] = set()
    steps: dict[str, dict] = {}
    try:
        # A: pg_dump -Fc onto the host's own disk.
        start = time.perf_counter()
        host(f"runuser -u postgres -- pg_dump -Fc {DATABASE} > {HOST_DUMP}")
        steps["pg_dump"] = {"seconds": time.perf_counter() - start}
        dump_size = int(host(f"stat -c %s {HOST_DUMP}").strip())

        # B: the same dump uploaded as one file, with the backup's client and TransferConfig.
        local_dump = workdir / "bench.dump"
        subprocess.run(["docker", "cp", "-q", f"{HOST}:{HOST_DUMP}", str(local_dump)], check=True)
        steps["upload"] = run_step("plain", str(local_dump))
        s3.delete_object(Bucket=bucket, Key=PLAIN_KEY)
        local_dump.unlink()

        # The engine, end to end: a set holding `bench` alone, then its restore.
        steps["backup"] = run_step("backup")
        if steps["backup"].get("set_id"):
            set_ids.add(steps["backup"]["set_id"])
        if "error" not in steps["backup"]:
            steps["restore_in_place"] = run_step("restore_in_place", steps["backup"]["set_id"])
            steps["restore"] = run_step("restore", steps["backup"]["set_id"])
        failed = {name: out["error"] for name, out in steps.items() if "error" in out}
        if failed:
            raise SystemExit("; ".join(f"{name}: {error}" for name, error in failed.items()))
    finally:
        cleanup(s3, bucket, set_ids, workdir)
        if opts.drop:
            psql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE); DROP ROLE IF EXISTS {DATABASE};")

    baseline = steps["pg_dump"]["seconds"] + steps["upload"]["seconds"]
    ratio = steps["backup"]["seconds"] / baseline
    restore_ratio = steps["restore"]["seconds"] / steps["restore_in_place"]["seconds"]
    peak = max(steps["backup"]["peak_mib"], steps["restore"]["peak_mib"])
    differences = steps["restore"]["differences"]
    matched = not any(differences.values()) and not any(steps["restore_in_place"]["differences"].values())
    engine_object = next(iter(steps["backup"]["objects"].values()))
    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "database": {
            "name": DATABASE,
            "target_gib": opts.size_gb,
            "size_bytes": size,
            "dump_bytes": dump_size,
            "engine_object_bytes": engine_object,
            "generated": generated,
        },
        "backup": {
            "part_size_mb": profile.backup.part_size_mb,
            "max_concurrency": profile.backup.max_concurrency,
            "encryption": profile.backup.encryption is not None,
        },
        "steps": {name: figures(out, size) for name, out in steps.items()},
        "ratio": {"backup_over_dump_plus_upload": round(ratio, 2), "target": RATIO_TARGET},
        "restore_ratio": {"beside_over_in_place": round(restore_ratio, 2), "target": RESTORE_RATIO_TARGET},
        "peak_memory": {"mib": round(peak, 1), "target_mib": MEMORY_TARGET_MIB},
        "restore_figures_match": matched,
        "restore_differences": differences,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "backup.json").write_text(json.dumps(results, indent=2) + "\n")

    def row(label: str, name: str) -> str:
        out = results["steps"][name]
        return f"| {label} | {out['seconds']} | {out['mb_per_s']} | {out.get('peak_mib', '-')} |"

    table = [
        "| step | seconds | MB/s | peak MiB |",
        "|---|---:|---:|---:|",
        row("A: `pg_dump -Fc` to the host's disk", "pg_dump"),
        row("B: plain `upload_file` of that dump", "upload"),
        f"| A + B | {round(baseline, 2)} | {rate(size, baseline)} | - |",
        row("end-to-end backup (engine, streamed)", "backup"),
        row("C: end-to-end restore in place (engine, verify + drop + pg_restore)", "restore_in_place"),
        row("end-to-end restore (engine, verify + pg_restore beside + check + swap)", "restore"),
        f"| **backup / (A + B)** | **{round(ratio, 2)}** (target {RATIO_TARGET}) | | "
        f"**{round(peak, 1)}** (target {MEMORY_TARGET_MIB}) |",
        f"| **restore / C** | **{round(restore_ratio, 2)}** (target {RESTORE_RATIO_TARGET}) | | |",
    ]
    notes = [
        "",
        f"Database `{DATABASE}`: {size} bytes ({size / GIB:.2f} GiB, pg_database_size; MB/s are 10^6 bytes of it "
        f"per second), dump {dump_size} bytes, engine object {engine_object} bytes. Part size "
        f"{profile.backup.part_size_mb} MiB, concurrency {profile.backup.max_concurrency}, "
        f"{'age-encrypted' if profile.backup.encryption else 'unencrypted'}. Restore figures match the manifest: "
        f"{'yes' if matched else 'no'}. {results['machine']['cpus']} CPUs, Python {results['machine']['python']}.",
    ]
    (RESULTS / "backup.md").write_text("\n".join(table + notes) + "\n")
    print("\n".join(table + notes))


if __name__ == "__main__":
    main()
