"""Verify backup, restore and the restore drill of every data service on the local data host, with
the real servers and the real SeaweedFS S3: known data written, backed up, destroyed, restored,
compared byte for byte; a tampered object, an S3 outage mid-backup, retention, age encryption."""

from __future__ import annotations

import datetime
import json
import os
import secrets
import subprocess
import time
import types

import nats
import psycopg
import pytest

from gpuaas.backup import engine, store
from gpuaas.backup.sets import BASELINE, complete_sets, list_sets, set_label, set_time
from gpuaas.backup.writer import BackupSetError, remove_sets
from gpuaas.profile import REPO_ROOT, BackupEncryption, SecretSource, load_profile
from roles.postgres import backup as postgres_backup
from roles.redis import backup as redis_backup
from tests.lane_clients import SERVER, LaneClients, secret
from tests.local_variant import on_server

STREAM = "BACKUP_PROBE"
WORKFLOW = f"backup-probe-{os.getpid()}"


def run_deploy(deploy: str, env: dict | None = None, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["pyinfra", "-y", *flags, "inventories/local.py", deploy],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
        env={**os.environ, **(env or {})},
    )


class Probe(LaneClients):
    """Known data in every service, and a way to read it back."""

    def __init__(self, profile):
        super().__init__(profile)
        self.rows = [(i, secrets.token_bytes(64 + i)) for i in range(300)]
        self.keys = {f"probe:{i}": secrets.token_bytes(100) for i in range(200)}
        self.messages = [secrets.token_bytes(200) for _ in range(150)]
        self.secret_value = secrets.token_hex(16)

    def write(self) -> None:
        with self.pg() as db:
            db.execute("DROP TABLE IF EXISTS backup_probe")
            db.execute("CREATE TABLE backup_probe (id int PRIMARY KEY, payload bytea NOT NULL)")
            with db.cursor() as cursor:
                cursor.executemany("INSERT INTO backup_probe VALUES (%s, %s)", self.rows)
        client = self.redis()
        client.flushall()
        client.mset(self.keys)

        async def publish(js):
            try:
                await js.delete_stream(STREAM)
            except nats.js.errors.NotFoundError:
                pass
            await js.add_stream(name=STREAM, subjects=["probe.>"])
            for index, message in enumerate(self.messages):
                await js.publish(f"probe.{index % 5}", message)

        self.nats(publish)
        if "probe/" not in self.bao("GET", "sys/mounts"):
            self.bao("POST", "sys/mounts/probe", {"type": "kv", "options": {"version": "2"}})
        self.bao("POST", "probe/data/platform", {"data": {"value": self.secret_value}})
        self.temporal(f"workflow start --type Probe --task-queue probe --workflow-id {WORKFLOW}")

    def destroy(self) -> None:
        with self.pg() as db:
            db.execute("DROP TABLE backup_probe")
        self.redis().flushall()

        async def delete(js):
            await js.delete_stream(STREAM)

        self.nats(delete)
        self.bao("DELETE", "probe/metadata/platform")
        self.temporal(f"workflow terminate --workflow-id {WORKFLOW} --reason probe")
        on_server(
            f"temporal workflow delete --yes --workflow-id {WORKFLOW} --address {SERVER}:7233 --namespace platform"
        )

    def read(self) -> dict:
        with self.pg() as db:
            rows = db.execute("SELECT id, payload FROM backup_probe ORDER BY id").fetchall()
        keys = self.redis().keys("probe:*")
        values = dict(zip(keys, self.redis().mget(keys), strict=True)) if keys else {}

        async def fetch(js):
            info = await js.stream_info(STREAM)
            return [(await js.get_msg(STREAM, seq)).data for seq in range(1, info.state.last_seq + 1)]

        described = json.loads(self.temporal(f"workflow describe --workflow-id {WORKFLOW}"))
        return {
            "rows": [(i, bytes(payload)) for i, payload in rows],
            "keys": {key.decode(): value for key, value in values.items()},
            "messages": self.nats(fetch),
            "secret": self.bao("GET", "probe/data/platform")["data"]["data"]["value"],
            "workflow": described["workflowExecutionInfo"]["execution"]["workflowId"],
        }

    def expected(self) -> dict:
        return {
            "rows": [(i, bytes(p)) for i, p in self.rows],
            "keys": self.keys,
            "messages": self.messages,
            "secret": self.secret_value,
            "workflow": WORKFLOW,
        }


@pytest.fixture(scope="module")
def local_hosts():
    """The local profile; the scenario's prepare step has converged its data services."""
    return load_profile("local")


@pytest.fixture(scope="module")
def probe(local_hosts):
    data = Probe(local_hosts)
    data.write()
    return data


@pytest.fixture(scope="module")
def backed_up(probe, local_hosts):
    result = run_deploy("deploys/backup.py")
    assert result.returncode == 0, result.stderr[-3000:]
    newest = complete_sets(store.client(local_hosts), local_hosts.backup.bucket, "local")[-1]
    assert f"backup set local/{newest}/ complete" in result.stderr + result.stdout
    return newest


def test_a_destroyed_environment_comes_back_byte_for_byte(probe, backed_up, local_hosts):
    manifest = engine.choose_set(local_hosts, backed_up)
    figures = {key: entry["figures"] for key, entry in manifest.services.items()}
    assert figures["local-server/postgres"]["platform"]["public.backup_probe"] == len(probe.rows)
    assert figures["local-server/redis"]["db0"] == len(probe.keys)
    assert figures["local-server/nats"][STREAM]["messages"] == len(probe.messages)
    openbao = figures["local-server/openbao"]
    # The canary is recorded as the sha256 of the value written just before the snapshot.
    assert sorted(openbao) == ["canary", "initialized", "sealed"]
    assert (openbao["initialized"], openbao["sealed"], len(openbao["canary"])) == (True, False, 64)
    assert manifest.source_sha and manifest.started <= manifest.ended
    probe.destroy()
    with pytest.raises(psycopg.errors.UndefinedTable):
        probe.read()

    dry = run_deploy("deploys/restore.py", {"GPUAAS_BACKUP_SET": backed_up}, "--dry")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "redis 7.0.15 from local-server onto local-server: dump.rdb" in dry.stdout + dry.stderr
    refused = run_deploy("deploys/restore.py", {"GPUAAS_BACKUP_SET": backed_up})
    assert refused.returncode != 0
    assert "refused without GPUAAS_CONFIRM='restore local'; nothing was changed" in refused.stdout + refused.stderr
    assert probe.redis().dbsize() == 0  # still destroyed: nothing was restored

    restored = run_deploy("deploys/restore.py", {"GPUAAS_BACKUP_SET": backed_up, "GPUAAS_CONFIRM": "restore local"})
    assert restored.returncode == 0, restored.stderr[-3000:]
    assert probe.read() == probe.expected()
    output = restored.stdout + restored.stderr
    for service in ("postgres", "redis", "nats", "openbao", "temporal"):
        assert f"{service} restored onto local-server: figures match the manifest" in output
    root_token = json.loads(secret(local_hosts, "openbao_init"))["local-server"]["root_token"]
    for value in (secret(local_hosts, "redis_password"), secret(local_hosts, "nats_password"), root_token):
        assert value not in output


def test_a_tampered_object_is_refused_before_any_service_is_touched(probe, backed_up, local_hosts):
    client, bucket = store.client(local_hosts), local_hosts.backup.bucket
    key = f"local/{backed_up}/local-server/redis/dump.rdb"
    original = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    probe.redis().set("written-after-the-backup", b"still here")
    client.put_object(Bucket=bucket, Key=key, Body=original[:-1] + bytes([original[-1] ^ 1]))
    try:
        result = run_deploy("deploys/restore.py", {"GPUAAS_BACKUP_SET": backed_up, "GPUAAS_CONFIRM": "restore local"})
    finally:
        client.put_object(Bucket=bucket, Key=key, Body=original)
    assert result.returncode != 0
    assert f"{key} has sha256" in result.stdout + result.stderr and "nothing was restored" in result.stderr
    assert probe.redis().get("written-after-the-backup") == b"still here"
    assert backed_up in complete_sets(client, bucket, "local")  # the in-use marker is gone again
    assert not list_sets(client, bucket, "local")[backed_up]["in_use"]


def test_the_restore_drill_proves_the_set_without_touching_live_data(probe, backed_up):
    probe.redis().set("live-only", b"untouched")
    result = run_deploy("deploys/restore_drill.py", {"GPUAAS_BACKUP_SET": backed_up})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((REPO_ROOT / "build" / "local" / "evidence" / "restore-drill.json").read_text())
    assert report["passed"] and report["set"] == f"local/{backed_up}"
    assert report["services"]["local-server/nats"]["found"][STREAM]["messages"] == len(probe.messages)
    openbao = report["services"]["local-server/openbao"]
    assert openbao["found"] == openbao["expected"] and not openbao["found"]["sealed"]
    assert len(openbao["found"]["canary"]) == 64  # the canary written before the backup, read back (its sha256)
    assert probe.redis().get("live-only") == b"untouched"
    assert "platform__drill" not in on_server("runuser -u postgres -- psql -XAt -c 'SELECT datname FROM pg_database'")
    assert "gpuaas-nats-drill" not in on_server("systemctl list-units --all --no-legend 'gpuaas-*' || true")


def stops_the_store_first(module):
    """`module`'s backup, but the object store goes down first: a real S3 outage in the middle of a run."""

    def back_up(job):
        on_server("systemctl stop seaweedfs")
        module.back_up(job)

    names = ("SERVICE", "DEPENDANTS", "applies", "figures", "restore", "drill")
    return types.SimpleNamespace(back_up=back_up, **{name: getattr(module, name) for name in names})


def store_answers(profile, seconds: float = 60) -> None:
    """Wait until the restarted store serves the bucket's objects again (its port opens first)."""
    client, deadline = store.client(profile), time.monotonic() + seconds
    while True:
        try:
            listed = client.list_objects_v2(Bucket=profile.backup.bucket, MaxKeys=1)
            for item in listed.get("Contents", []):  # its volumes come back after its listing does
                client.get_object(Bucket=profile.backup.bucket, Key=item["Key"])["Body"].read()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_an_s3_outage_mid_backup_leaves_an_incomplete_set_that_is_never_offered(probe, local_hosts):
    try:
        with pytest.raises(
            BackupSetError,
            # The store refuses new connections once stopped, or closes the one an upload is sending on.
            match=r"backup set local/.*: uploading local-server/redis/dump.rdb failed \((Could not connect|Connection "
            r"was closed).* the set stays incomplete \(no manifest\)",
        ):
            engine.back_up(
                local_hosts, log=lambda line: None, services=(postgres_backup, stops_the_store_first(redis_backup))
            )
        stopped = run_deploy("deploys/backup.py")
    finally:
        on_server("systemctl start seaweedfs")
        store_answers(local_hosts)
    # Unreachable while the deploy is prepared, takes the lease or uploads: a non-zero exit that says so.
    said = stopped.stdout + stopped.stderr
    assert stopped.returncode != 0 and any(
        reason in said for reason in ("cannot be read", "while taking the backup lease", "the set stays incomplete")
    )
    client, bucket = store.client(local_hosts), local_hosts.backup.bucket
    sets = list_sets(client, bucket, "local")
    incomplete = [set_id for set_id, entry in sets.items() if not entry["complete"]]
    assert incomplete and not set(incomplete) & set(complete_sets(client, bucket, "local"))
    assert engine.choose_set(local_hosts, "latest").set_id not in incomplete


def test_a_service_that_cannot_be_backed_up_fails_the_run(probe, local_hosts):
    on_server("systemctl stop redis-server")
    try:
        with pytest.raises(BackupSetError, match=r"is incomplete .*local-server: Redis on port 6379 did not answer"):
            engine.back_up(local_hosts, log=lambda line: None, services=(postgres_backup, redis_backup))
    finally:
        on_server("systemctl start redis-server")


def test_retention_keeps_the_newest_sets_and_clears_failed_runs(probe, local_hosts):
    for _ in range(local_hosts.backup.keep_last + 1):
        result = run_deploy("deploys/backup.py")
        assert result.returncode == 0, result.stderr[-3000:]
    sets = list_sets(store.client(local_hosts), local_hosts.backup.bucket, "local")
    # A demo capture's baseline sets (the host tests before may have left one) are kept on top of keep_last.
    complete = sorted(s for s, e in sets.items() if e["complete"] and set_label(s) != BASELINE)
    assert len(complete) == local_hosts.backup.keep_last
    assert all(entry["complete"] for entry in sets.values())  # the failed runs' leftovers are gone
    newest = set_time(engine.choose_set(local_hosts, "latest").set_id)
    assert datetime.datetime.now(datetime.timezone.utc) - newest < datetime.timedelta(minutes=5)


def test_retention_changes_nothing_until_a_set_is_due(probe, local_hosts):
    client, bucket, keep = store.client(local_hosts), local_hosts.backup.bucket, local_hosts.backup.keep_last
    sets = list_sets(client, bucket, "local")
    older = sorted(sets)[:-1]
    remove_sets(client, bucket, {set_id: sets[set_id]["keys"] for set_id in older})  # only the newest is left

    def retention_changed() -> bool:
        result = run_deploy("deploys/backup.py", None, "--json")
        assert result.returncode == 0, result.stderr[-3000:]
        operations = {op["name"]: op for op in json.loads(result.stdout)["results"]["operations"]}
        retention = next(op for name, op in operations.items() if "retention" in name)
        return bool(retention["success"])

    assert [retention_changed() for _ in range(keep - 1)] == [False] * (keep - 1)  # up to keep_last sets
    assert retention_changed()  # one more: the oldest goes
    assert len(complete_sets(client, bucket, "local")) == keep


def test_encrypted_sets_hold_no_plaintext_and_restore(probe, local_hosts, monkeypatch):
    identity = subprocess.run(["age-keygen"], capture_output=True, text=True, check=True).stdout
    recipient = next(line.split(": ")[1] for line in identity.splitlines() if "public key" in line)
    monkeypatch.setenv("GPUAAS_TEST_AGE_IDENTITY", identity.strip().splitlines()[-1])
    encrypted = local_hosts.model_copy(
        update={
            "backup": local_hosts.backup.model_copy(
                update={"encryption": BackupEncryption(recipients=[recipient], identity="secret:backup_age_identity")}
            ),
            "secrets": {**local_hosts.secrets, "backup_age_identity": SecretSource(env="GPUAAS_TEST_AGE_IDENTITY")},
        }
    )
    probe.redis().set("probe:plaintext-marker", b"PLAINTEXT-MARKER")
    manifest = engine.back_up(encrypted, log=lambda line: None, services=(redis_backup,))
    client, bucket = store.client(local_hosts), local_hosts.backup.bucket
    stored = client.get_object(Bucket=bucket, Key=manifest.objects[0].key)["Body"].read()
    assert stored.startswith(b"age-encryption.org/v1") and b"PLAINTEXT-MARKER" not in stored
    assert manifest.encryption == "age"
    probe.redis().flushall()
    results = engine.restore(encrypted, engine.plan_restore(encrypted, manifest), log=lambda line: None)
    assert results == {"local-server/redis": []}
    assert probe.redis().get("probe:plaintext-marker") == b"PLAINTEXT-MARKER"
    with pytest.raises(Exception, match="names no identity"):
        engine.plan_restore(local_hosts, manifest)
