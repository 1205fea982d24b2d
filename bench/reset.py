"""Benchmark: the demo reset after simulated use, at the baseline's size and grown, beside pg_dump/pg_restore.

The reset is deploys/reset.py's, of inventories/demo-baseline, on the local lane.

    flock /tmp/gpuaas-lane.lock python bench/reset.py [--repeats 5] [--sizes 100 10000:1000000]
                                                     [--restore-repeats 3]

First the repository baseline is loaded and captured (the engine's own calls, no backup set), so every run
starts from the same state. Then, for the example baseline and for each --sizes entry (N: N copies of every
table of the platform database, new ids and foreign keys kept valid; N:M: N copies, usage_records M
copies), captured again at that size:

  - --repeats times: simulated use (rows added to usage_records, a balance changed, a persona deleted, Redis
    keys added, messages published to the USAGE stream, a path written under OpenBao's demo/ mount, through
    psycopg, redis, nats and OpenBao's API as the product's clients would), then the operator's command
    `GPUAAS_CONFIRM='reset local' pyinfra -y inventories/local.py deploys/reset.py`, timed from the outside
    (wall) and by the engine itself (`report.seconds`, from build/local/evidence/demo-reset.json);
  - the parts on the host, timed over one SSH connection: the template copy alone (CREATE DATABASE ...
    TEMPLATE platform__baseline, with STRATEGY FILE_COPY as the reset makes it, and PostgreSQL's default
    WAL_LOG), one checksum pass over the database (the reset makes one, of its copy before the swap), and the
    path the template copy replaces:
    `pg_dump -Fc` of the same database, then createdb + `pg_restore` into a new database
    (--restore-repeats times).

At the end, whatever happened, the lane is put back as it was found: the repository baseline loaded
(GPUAAS_RESET=load) and captured (GPUAAS_RESET=capture, which writes a baseline backup set), through
pyinfra. Writes bench/results/reset.json and bench/results/reset.md. Needs the local lane, up and
converged; the lane is shared, so run it under `flock /tmp/gpuaas-lane.lock`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import ssl
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nats
import psycopg
import redis

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gpuaas.profile import load_profile  # noqa: E402
from gpuaas.secrets import resolve  # noqa: E402
from roles.demo import engine  # noqa: E402
from roles.demo import postgres as postgres_part  # noqa: E402
from roles.postgres.backup import psql  # noqa: E402
from roles.postgres.config import settings_for as postgres_settings  # noqa: E402

RESULTS = REPO / "bench" / "results"
EVIDENCE = REPO / "build" / "local" / "evidence" / "demo-reset.json"
SERVER = "172.30.77.10"
DATABASE = "platform"
TEMPLATE = postgres_part.template_of(DATABASE)
#: Scratch databases (no profiled name, none of the engine's copies) and the dump, removed at the end.
COPY, RESTORED = "bench_reset_copy", "bench_reset_restore"
HOST_DUMP = "/var/tmp/gpuaas-bench-reset.dump"
#: The engine's reset of the example baseline, report.seconds (reported, never asserted).
TARGET_S = 10.0
MIB = 1 << 20
#: The example baseline's tables: how a copy k of a seed row is made (ids shifted by k times the seed's
#: largest id, {t} for tenants and so on; foreign keys shifted alike, so they stay valid), and which
#: column and seed key tell the seed rows.
GROW = {
    "tenants": ("id + k * {t}, slug || '-' || k, name || ' ' || k", "id", "t"),
    "personas": ("id + k * {p}, username || '-' || k, persona, tenant_id + k * {t}, display || ' ' || k", "id", "p"),
    "projects": ("id + k * {j}, tenant_id + k * {t}, slug, name", "id", "j"),
    "app_catalogue": ("id + k * {a}, slug || '-' || k, name, kind, image, launchable", "id", "a"),
    "resources": ("id + k * {r}, project_id + k * {j}, app_id + k * {a}, name || '-' || k, gpus, state", "id", "r"),
    "balances": ("tenant_id + k * {t}, credit, used", "tenant_id", "t"),
}
KEYS = {"tenants": "t", "personas": "p", "projects": "j", "app_catalogue": "a", "resources": "r", "usage_records": "u"}


# --- simulated use, through the services' own clients --------------------------------------------------


class Use:
    """What a demo does to the services between two resets."""

    def __init__(self, profile, ca: str):
        self.profile, self.ca, self.round = profile, ca, 0

    def secret(self, name: str) -> str:
        return resolve(self.profile, f"secret:{name}").reveal()

    def __call__(self) -> None:
        self.round += 1
        with psycopg.connect(
            host=SERVER, dbname=DATABASE, user="platform", password=self.secret("pg_platform_password"), autocommit=True
        ) as db:
            top = db.execute("SELECT coalesce(max(id), 0) FROM usage_records").fetchone()[0]
            with db.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO usage_records (id, resource_id, day, gpu_hours, cost) "
                    "VALUES (%s, 1, '2026-12-02', 1.5, 4500)",
                    [(top + i,) for i in range(1, 51)],
                )
            db.execute("UPDATE balances SET used = used + 4500 WHERE tenant_id = 1")
            db.execute("DELETE FROM personas WHERE username = 'otto'")
        client = redis.Redis(host=SERVER, port=6379, password=self.secret("redis_password"))
        try:
            client.mset({f"bench:use:{self.round}:{i}": f"value {i}" for i in range(100)})
            client.hset("tenant:acme:quota", "gpus", "8")
        finally:
            client.close()
        asyncio.run(self._publish())
        self._bao("POST", "demo/data/bench/use", {"data": {"round": str(self.round)}})

    async def _publish(self) -> None:
        client = await nats.connect(f"nats://{SERVER}:4222", user="platform", password=self.secret("nats_password"))
        try:
            stream = client.jetstream()
            for i in range(20):
                await stream.publish("usage.acme.vision-notebook", json.dumps({"bench": self.round, "i": i}).encode())
        finally:
            await client.close()

    def _bao(self, method: str, path: str, body: dict) -> None:
        token = json.loads(self.secret("openbao_init"))["local-server"]["root_token"]
        request = urllib.request.Request(
            f"https://{SERVER}:8200/v1/{path}",
            method=method,
            data=json.dumps(body).encode(),
            headers={"X-Vault-Token": token},
        )
        with urllib.request.urlopen(request, context=ssl.create_default_context(cadata=self.ca), timeout=10):
            pass


# --- the host ------------------------------------------------------------------------------------------


class Host:
    """local-server over one shared SSH connection, as the engine reaches it."""

    def __init__(self, target):
        self.target, self.port = target, int(postgres_settings(target.profile).port)

    def run(self, command: str, what: str, input: str = "") -> str:
        return self.target.shell.run(command, what, input=input.encode())

    def sql(self, statements: str, database: str = "postgres", options: str = "") -> str:
        return self.run(psql(self.port, database, options), "bench SQL", input=statements)

    def timed(self, command: str, what: str, input: str = "") -> float:
        start = time.perf_counter()
        self.run(command, what, input)
        return time.perf_counter() - start

    def timed_sql(self, statements: str) -> float:
        start = time.perf_counter()
        self.sql(statements)
        return time.perf_counter() - start

    def drop_scratch(self) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {COPY} WITH (FORCE);\nDROP DATABASE IF EXISTS {RESTORED} WITH (FORCE);\n")
        self.run(f"rm -f {HOST_DUMP}", "removing the dump")


def seed_max(host: Host) -> dict[str, int]:
    """The largest id of each table of the example baseline (as loaded: the seed)."""
    found = {}
    for table, key in KEYS.items():
        found[key] = int(host.sql(f"SELECT max(id) FROM {table};", DATABASE).strip())
    return found


def grow(host: Host, seed: dict[str, int], copies: tuple[int, int], usage: tuple[int, int]) -> float:
    """Copies copies[0]..copies[1]-1 of every seed row (usage_records: usage[0]..usage[1]-1, their
    resources taken round-robin among the copies there are), in one transaction; the seconds it took."""
    low, high = copies
    parts = [
        f"INSERT INTO {table} SELECT {columns.format(**seed)} FROM {table}, generate_series({low}, {high - 1}) AS k "
        f"WHERE {column} <= {seed[key]};"
        for table, (columns, column, key) in GROW.items()
        if high > low
    ]
    if usage[1] > usage[0]:
        parts.append(
            f"INSERT INTO usage_records SELECT id + k * {seed['u']}, resource_id + (k % {high}) * {seed['r']}, "
            f"day - (k % 730), gpu_hours, cost FROM usage_records, generate_series({usage[0]}, {usage[1] - 1}) AS k "
            f"WHERE id <= {seed['u']};"
        )
    start = time.perf_counter()
    host.sql("\n".join(parts) + "\n", DATABASE, options="-1")
    host.sql("VACUUM (ANALYZE, PARALLEL 0);", DATABASE)
    return time.perf_counter() - start


def pyinfra(env: dict[str, str]) -> tuple[float, str]:
    """`pyinfra -y inventories/local.py deploys/reset.py` with `env`; wall seconds and its output."""
    clean = {key: value for key, value in os.environ.items() if key not in (engine.MODE_ENV, engine.CONFIRM_ENV)}
    start = time.perf_counter()
    done = subprocess.run(
        ["pyinfra", "-y", "inventories/local.py", "deploys/reset.py"],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise SystemExit(f"pyinfra deploys/reset.py ({env}) failed ({done.returncode}):\n{output[-3000:]}")
    return wall, output


def operator_reset() -> dict:
    """The operator's reset; its wall time and the engine's own seconds and verdict."""
    before = EVIDENCE.stat().st_mtime_ns if EVIDENCE.exists() else 0
    wall, output = pyinfra({engine.CONFIRM_ENV: "reset local"})
    if not EVIDENCE.exists() or EVIDENCE.stat().st_mtime_ns == before:
        raise SystemExit(f"the reset wrote no {EVIDENCE.relative_to(REPO)}:\n{output[-3000:]}")
    report = json.loads(EVIDENCE.read_text())
    if not report["passed"] or "matches the baseline" not in output:
        raise SystemExit(f"the reset did not match the baseline: {report['differences']}")
    return {"command_s": round(wall, 2), "engine_s": report["seconds"]}


def spread(values: list[float]) -> dict:
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
        "runs": [round(value, 2) for value in values],
    }


def measure(host: Host, use: Use, label: str, repeats: int, restore_repeats: int) -> dict:
    """One size: the resets after simulated use, then the parts on the host and the dump/restore path."""
    runs = []
    for number in range(1, repeats + 1):
        use()
        runs.append(operator_reset())
        print(f"  {label}: reset {number}/{repeats}: {runs[-1]}", file=sys.stderr, flush=True)
    # platform is now exactly the captured baseline: its size, rows and a checksum pass.
    start = time.perf_counter()
    tables = postgres_part.checksums(host.target, DATABASE)
    checksum_s = time.perf_counter() - start
    rows = {table: int(value.split()[0]) for table, value in tables.items()}
    size, template_size = (
        int(value)
        for value in host.sql(f"SELECT pg_database_size('{DATABASE}'), pg_database_size('{TEMPLATE}');").split("|")
    )
    copies: dict[str, list[float]] = {"WAL_LOG": [], "FILE_COPY": []}
    for _ in range(repeats):
        for strategy, timings in copies.items():
            timings.append(
                host.timed_sql(f"CREATE DATABASE {COPY} TEMPLATE {TEMPLATE} OWNER {DATABASE} STRATEGY {strategy};")
            )
            host.sql(f"DROP DATABASE {COPY};")
    pg = f"-p {host.port}"
    dump_s = host.timed(f"runuser -u postgres -- pg_dump {pg} -Fc -d {DATABASE} -f {HOST_DUMP}", "pg_dump")
    dump_bytes = int(host.run(f"stat -c %s {HOST_DUMP}", "the dump's size").strip())
    restores = []
    for _ in range(restore_repeats):
        restores.append(
            host.timed(
                f"runuser -u postgres -- createdb {pg} -O {DATABASE} {RESTORED} && "
                f"runuser -u postgres -- pg_restore {pg} --exit-on-error --single-transaction --no-owner "
                f"--role={DATABASE} -d {RESTORED} {HOST_DUMP}",
                "createdb + pg_restore",
            )
        )
        host.sql(f"DROP DATABASE {RESTORED};")
    host.run(f"rm -f {HOST_DUMP}", "removing the dump")
    found = {
        "size": label,
        "rows": sum(rows.values()),
        "usage_records_rows": rows.get("public.usage_records", 0),
        "database_bytes": size,
        "template_bytes": template_size,
        "engine_reset_s": spread([run["engine_s"] for run in runs]),
        "command_s": spread([run["command_s"] for run in runs]),
        "template_copy_s": spread(copies["FILE_COPY"]),
        "template_copy_wal_log_s": spread(copies["WAL_LOG"]),
        "table_rows": rows,
        "checksum_pass_s": round(checksum_s, 2),
        "pg_dump_s": round(dump_s, 2),
        "dump_bytes": dump_bytes,
        "createdb_pg_restore_s": spread(restores),
    }
    print(f"  {label}: {json.dumps(found)}", file=sys.stderr, flush=True)
    return found


def parse_size(text: str) -> tuple[int, int]:
    copies, _, usage = text.partition(":")
    parsed = (int(copies), int(usage or copies))
    if parsed[0] < 1 or parsed[1] < parsed[0]:
        raise argparse.ArgumentTypeError(f"{text}: N or N:M with 1 <= N <= M")
    return parsed


def label_of(copies: int, usage: int) -> str:
    return f"{copies}x" if usage == copies else f"{copies}x, usage_records {usage}x"


def postgres_facts(host: Host) -> dict:
    found = host.sql("SELECT current_setting('server_version') || '|' || current_setting('shared_buffers');")
    return dict(zip(("version", "shared_buffers"), found.strip().split("|"), strict=True))


def table(results: dict) -> str:
    lines = [
        "| size | rows | usage_records | pg_database_size(platform) MiB | engine reset s (median, min-max) "
        "| operator command s | template copy (FILE_COPY) s | template copy, WAL_LOG s | createdb + pg_restore s "
        "| checksum pass s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in results["sizes"]:
        reset, command = entry["engine_reset_s"], entry["command_s"]
        lines.append(
            f"| {entry['size']} | {entry['rows']} | {entry['usage_records_rows']} | "
            f"{entry['database_bytes'] / MIB:.1f} | {reset['median']} ({reset['min']}-{reset['max']}) | "
            f"{command['median']} ({command['min']}-{command['max']}) | {entry['template_copy_s']['median']} | "
            f"{entry['template_copy_wal_log_s']['median']} | {entry['createdb_pg_restore_s']['median']} | "
            f"{entry['checksum_pass_s']} |"
        )
    first, last, machine = results["sizes"][0], results["sizes"][-1], results["machine"]
    verdict = "under" if first["engine_reset_s"]["median"] < TARGET_S else "NOT under"
    lines += [
        "",
        f"Engine's reset of the example baseline (report.seconds, the figure set against the target): "
        f"{first['engine_reset_s']['median']} s median of {results['repeats']}, {verdict} the target of "
        f"{TARGET_S} s; the whole operator command (`pyinfra -y inventories/local.py deploys/reset.py`, wall): "
        f"{first['command_s']['median']} s.",
        f"At the largest size ({last['size']}, {last['database_bytes'] / MIB:.0f} MiB) the engine's "
        f"{last['engine_reset_s']['median']} s are mostly its checksum pass ({last['checksum_pass_s']} s) "
        f"and the template copy ({last['template_copy_s']['median']} s).",
        "Each reset follows simulated use (50 usage_records rows, a balance, a persona deleted, 101 Redis keys, "
        "20 USAGE messages, an OpenBao path under demo/). Template copy: CREATE DATABASE ... TEMPLATE "
        f"{TEMPLATE} with STRATEGY FILE_COPY, as the reset makes it (and with PostgreSQL's default WAL_LOG), "
        f"median of {results['repeats']}; createdb + pg_restore: the same database from a "
        f"`pg_dump -Fc` archive (--single-transaction), median of {results['restore_repeats']}; checksum pass: one "
        "the reset's content checksums of the database (of its copy, before the swap). "
        f"Timed over one SSH connection. {machine['cpus']} CPUs, {machine['memory_gib']} GiB, Python "
        f"{machine['python']}, PostgreSQL {machine['postgres']['version']} (shared_buffers "
        f"{machine['postgres']['shared_buffers']}).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--repeats", type=int, default=5, help="resets per size (default 5)")
    args.add_argument(
        "--sizes",
        type=parse_size,
        nargs="*",
        default=[(100, 100), (10000, 1000000)],
        help="grown sizes: N copies of every table, or N:M with usage_records M copies (default 100 10000:1000000)",
    )
    args.add_argument("--restore-repeats", type=int, default=3, help="pg_restore runs per size (default 3)")
    opts = args.parse_args()
    sizes = sorted(opts.sizes)
    if any(later[1] < earlier[1] for earlier, later in zip(sizes, sizes[1:], strict=False)):
        raise SystemExit("--sizes: usage_records copies must grow with the table copies")

    profile = load_profile("local")
    refused = engine.environment_refusal(profile, "reset")
    if refused:
        raise SystemExit(refused)
    log = lambda line: print(f"  engine: {line}", file=sys.stderr, flush=True)  # noqa: E731
    results: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30), 1),
            "python": platform.python_version(),
        },
        "repeats": opts.repeats,
        "restore_repeats": opts.restore_repeats,
        "target_engine_reset_s": TARGET_S,
        "sizes": [],
    }
    total = time.perf_counter()
    try:
        with engine.targets(profile) as (target, *_):
            host = Host(target)
            results["machine"]["postgres"] = postgres_facts(host)
            host.drop_scratch()
            try:
                use = Use(profile, host.run("cat /etc/openbao/tls/ca.crt", "OpenBao's CA"))
                print("the repository baseline, loaded and captured", file=sys.stderr, flush=True)
                engine.load(profile, log)
                engine.capture(profile, log, bucket=False)
                seed = seed_max(host)
                results["sizes"].append(measure(host, use, "example baseline (1x)", opts.repeats, opts.restore_repeats))
                done = (1, 1)
                for copies, usage in sizes:
                    label = label_of(copies, usage)
                    print(f"growing platform to {label}", file=sys.stderr, flush=True)
                    grown_s = grow(host, seed, (done[0], copies), (done[1], usage))
                    start = time.perf_counter()
                    engine.capture(profile, log, bucket=False)
                    captured_s = time.perf_counter() - start
                    done = (copies, usage)
                    entry = measure(host, use, label, opts.repeats, opts.restore_repeats)
                    entry.update({"grow_s": round(grown_s, 1), "capture_s": round(captured_s, 1)})
                    results["sizes"].append(entry)
            finally:
                host.drop_scratch()
    finally:
        # The lane as it was found: the repository baseline written, then captured (with its backup set).
        print("back to the repository baseline: load, then capture", file=sys.stderr, flush=True)
        pyinfra({engine.MODE_ENV: "load", engine.CONFIRM_ENV: "reset local"})
        pyinfra({engine.MODE_ENV: "capture", engine.CONFIRM_ENV: "capture local"})
    results["total_s"] = round(time.perf_counter() - total, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "reset.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "reset.md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
