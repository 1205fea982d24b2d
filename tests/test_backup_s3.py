"""Signed manifests, the environment's lease, retention beside live runs and restore refusals, against a
real SeaweedFS S3 (`weed`) on a loopback address of this machine; the backup deploys on the controller
only: no lane host is contacted."""

from __future__ import annotations

import datetime
import io
import json
import os
import random
import subprocess
import threading
import time

import pytest
import yaml
from pyinfra.api.exceptions import DeployError

from gpuaas.backup import engine, store
from gpuaas.backup.lease import Lease, LeaseHeld, LeaseLost, LeaseRecord, read_lease
from gpuaas.backup.service import RestoreRefused
from gpuaas.backup.sets import LEASE, MANIFEST, Manifest, list_sets, prefix
from gpuaas.backup.writer import BackupSetError, ManifestKey, SetWriter, mark_in_use
from gpuaas.profile import REPO_ROOT, SecretSource, load_profile
from gpuaas.secrets import Secret
from tests.lane_s3 import lane_s3


@pytest.fixture(scope="module")
def profile():
    """The local profile with its backup endpoint on a loopback address of its own (so that its ports
    cannot meet another store's), a short lease wait, and that store running."""
    local = load_profile("local")
    address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
    backup = local.backup.model_copy(update={"endpoint": f"http://{address}:8333", "lease_wait": 3})
    shaped = local.model_copy(update={"backup": backup})
    with lane_s3(shaped):
        yield shaped


@pytest.fixture
def s3(profile):
    client = store.client(profile)
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=profile.backup.bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=profile.backup.bucket, Key=item["Key"])


def write_set(
    s3,
    profile,
    key: ManifestKey | None = None,
    finish: bool = True,
    node: str = "local-server",
    service: str = "redis",
    payload: bytes = b"REDIS0011 known data",
) -> SetWriter:
    """A set of one object, its manifest signed with `key` (default: the profile's own)."""
    writer = SetWriter(s3, profile.backup.bucket, profile.name, "abc123", key or engine.manifest_key(profile))
    writer.upload(f"{node}/{service}/dump.rdb", io.BytesIO(payload))
    writer.record(f"{node}/{service}", "7.2", {"db0": 2})
    if finish:
        writer.finish()
    return writer


def manifest_body(s3, profile, writer: SetWriter) -> dict:
    return json.loads(s3.get_object(Bucket=profile.backup.bucket, Key=writer.prefix + MANIFEST)["Body"].read())


def put_manifest(s3, profile, writer: SetWriter, data: dict) -> None:
    s3.put_object(Bucket=profile.backup.bucket, Key=writer.prefix + MANIFEST, Body=json.dumps(data).encode())


OTHER_KEY = ManifestKey(Secret("other", "k" * 48), "backup.manifest_key")


# -- signed manifests ------------------------------------------------------------------------------


def test_a_signed_set_is_chosen_and_planned(s3, profile):
    writer = write_set(s3, profile)
    manifest = engine.choose_set(profile, "latest")
    assert manifest == writer.manifest
    assert list(engine.plan_restore(profile, manifest).steps) == [("local-server", "redis")]
    assert manifest_body(s3, profile, writer)["signature"]["algorithm"] == "HMAC-SHA256"


def test_a_tampered_manifest_is_refused(s3, profile):
    writer = write_set(s3, profile)
    data = manifest_body(s3, profile, writer)
    # Someone who can write to the bucket adds a database for the restore to drop and replace.
    data["services"]["local-server/postgres"] = {"version": "15", "figures": {"platform": {}, "intruder": {}}}
    put_manifest(s3, profile, writer, data)
    with pytest.raises(BackupSetError) as refused:
        engine.choose_set(profile, writer.manifest.set_id)
    assert str(refused.value) == (
        f"backup set local/{writer.manifest.set_id}: its manifest is not signed with this environment's manifest key "
        "(backup.manifest_key): its content was changed after it was signed; nothing was changed"
    )


def test_a_manifest_signed_with_another_key_is_refused(s3, profile):
    writer = write_set(s3, profile, key=OTHER_KEY)
    with pytest.raises(
        BackupSetError,
        match=r"its manifest is not signed with this environment's manifest key "
        r"\(backup.manifest_key\): it was signed with another key \(id [0-9a-f]{16}; this key's id is "
        r"[0-9a-f]{16}\); nothing was changed",
    ):
        engine.choose_set(profile, "latest")
    assert writer.manifest.set_id in list_sets(s3, profile.backup.bucket, profile.name)  # refused, not removed


def test_an_unsigned_legacy_manifest_is_refused_with_its_own_message(s3, profile):
    writer = write_set(s3, profile)
    put_manifest(s3, profile, writer, json.loads(writer.manifest.to_json()))
    with pytest.raises(
        BackupSetError,
        match=f"backup set local/{writer.manifest.set_id}: its manifest is unsigned "
        r"\(it carries no signature\): it was written before manifests were signed.*"
        "nothing was changed",
    ):
        engine.choose_set(profile, writer.manifest.set_id)


def test_a_signed_manifest_copied_to_another_set_is_refused(s3, profile):
    first, second = write_set(s3, profile), write_set(s3, profile)
    put_manifest(s3, profile, second, manifest_body(s3, profile, first))
    with pytest.raises(BackupSetError, match=f"describes set local/{first.manifest.set_id}, copied here"):
        engine.choose_set(profile, second.manifest.set_id)


def test_names_the_profile_does_not_have_are_refused(s3, profile):
    write_set(s3, profile, node="intruder-host")
    manifest = engine.choose_set(profile, "latest")  # signed by a holder of the key, yet not this profile's
    with pytest.raises(
        DeployError, match="host 'intruder-host' is not a data host of local \\(local-server\\); .*nothing was changed"
    ):
        engine.plan_restore(profile, manifest)
    s3.delete_object(Bucket=profile.backup.bucket, Key=prefix("local", manifest.set_id) + MANIFEST)
    write_set(s3, profile, service="mysql")
    with pytest.raises(DeployError, match="service 'mysql' is not one local backs up"):
        engine.plan_restore(profile, engine.choose_set(profile, "latest"))


def test_another_environments_set_verifies_only_with_its_own_key_named_in_the_profile(s3, profile, monkeypatch):
    staging_key = Secret("backup_manifest_key_staging", "s" * 48)
    writer = SetWriter(s3, profile.backup.bucket, "staging", "abc123", ManifestKey(staging_key, "backup.manifest_key"))
    writer.upload("stg-server-1/redis/dump.rdb", io.BytesIO(b"REDIS0011 staging data"))
    writer.record("stg-server-1/redis", "7.2", {"db0": 1})
    writer.finish()
    with pytest.raises(
        DeployError,
        match="backup.trusted_manifest_keys.staging: not set; a set of staging is "
        "restored only when its manifest verifies with staging's manifest key",
    ):
        engine.choose_set(profile, "latest", "staging")
    # Trusting a key that is not staging's: refused, naming the field.
    wrong = profile.model_copy(
        update={
            "backup": profile.backup.model_copy(
                update={"trusted_manifest_keys": {"staging": "secret:backup_secret_access_key"}}
            )
        }
    )
    with pytest.raises(
        BackupSetError,
        match=r"not signed with staging's manifest key "
        r"\(backup.trusted_manifest_keys.staging\): it was signed with another key",
    ):
        engine.choose_set(wrong, "latest", "staging")
    assert engine.manifest_key(profile).secret != staging_key
    monkeypatch.setenv("GPUAAS_TEST_STAGING_MANIFEST_KEY", staging_key.reveal())
    secrets = {**profile.secrets, staging_key.name: SecretSource(env="GPUAAS_TEST_STAGING_MANIFEST_KEY")}
    backup = profile.backup.model_copy(update={"trusted_manifest_keys": {"staging": f"secret:{staging_key.name}"}})
    trusting = profile.model_copy(update={"backup": backup, "secrets": secrets})
    manifest = engine.choose_set(trusting, "latest", "staging")
    plan = engine.plan_restore(trusting, manifest, allow_other_environment=True)
    assert plan.steps[("stg-server-1", "redis")][0].name == "local-server"


# -- the lease ------------------------------------------------------------------------------------


def lease(s3, profile, operation: str, wait: float = 3, ttl: int = 300, log=None) -> Lease:
    return Lease(s3, profile.backup.bucket, profile.name, operation, ttl, wait, log or (lambda line: None))


def test_two_runs_at_once_one_holds_the_lease_the_other_waits_then_refuses_naming_it(s3, profile):
    start, outcomes = threading.Barrier(2), {}

    def take(operation: str) -> None:
        contender = lease(s3, profile, operation, wait=3)
        start.wait()
        began = time.monotonic()
        try:
            contender.acquire()
            outcomes[operation] = ("held", contender)
            time.sleep(5)  # longer than the other waits
        except LeaseHeld as error:
            outcomes[operation] = ("refused", error, time.monotonic() - began)

    threads = [threading.Thread(target=take, args=(operation,)) for operation in ("backup", "restore")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held = [op for op, outcome in outcomes.items() if outcome[0] == "held"]
    refused = [op for op, outcome in outcomes.items() if outcome[0] == "refused"]
    assert len(held) == 1 and len(refused) == 1
    winner = outcomes[held[0]][1]
    _, error, waited = outcomes[refused[0]]
    assert waited >= 3
    message = str(error)
    assert message.startswith(
        f"local: another run holds the backup lease: {winner.record.holder} "
        f"(pid {winner.record.pid}), running {held[0]} since "
    )
    assert f"lease expiring {winner.record.expires}" in message
    assert message.endswith(f"{refused[0]} waited 3s and was refused, nothing was changed")
    winner.release()
    record, _ = read_lease(s3, profile.backup.bucket, profile.name)
    assert record is None


def test_a_waiting_run_gets_the_lease_once_the_holder_releases_it(s3, profile):
    first = lease(s3, profile, "backup")
    first.acquire()
    threading.Timer(1.5, first.release).start()
    lines: list[str] = []
    second = lease(s3, profile, "retention", wait=10, log=lines.append)
    second.acquire()
    assert lines[0].startswith(f"local: waiting up to 10s for {first.record.holder}")
    assert read_lease(s3, profile.backup.bucket, profile.name)[0].token == second.record.token
    second.release()


def test_an_expired_lease_is_taken_over_and_reported(s3, profile):
    gone = LeaseRecord(
        "ops@gone-controller",
        4242,
        "restore",
        "t" * 32,
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T00:05:00+00:00",
        "20260101T000000000000Z-abcdef",
    )
    s3.put_object(Bucket=profile.backup.bucket, Key=f"local/{LEASE}", Body=json.dumps(gone.__dict__).encode())
    lines: list[str] = []
    taker = lease(s3, profile, "backup", log=lines.append)
    taker.acquire()
    assert lines == [
        "local: took over the backup lease of ops@gone-controller (pid 4242), running restore of set "
        "20260101T000000000000Z-abcdef since 2026-01-01T00:00:00+00:00, lease expiring "
        "2026-01-01T00:05:00+00:00 (that run is expired)"
    ]
    assert read_lease(s3, profile.backup.bucket, profile.name)[0].token == taker.record.token
    taker.release()


def test_the_lease_of_a_run_killed_on_this_controller_is_taken_over_before_it_expires(s3, profile):
    killed = subprocess.Popen(["sleep", "60"])
    victim = lease(s3, profile, "backup")
    victim.record.pid = killed.pid
    victim.acquire()
    victim._stop.set()  # SIGKILL: no renewal, no release
    killed.kill()
    killed.wait()
    lines: list[str] = []
    taker = lease(s3, profile, "restore", wait=0, log=lines.append)
    taker.acquire()
    assert lines == [
        f"local: took over the backup lease of {victim.record.describe()} (that run is no longer "
        "running on this controller)"
    ]
    taker.release()


def test_a_lease_the_store_did_not_let_go_is_taken_over_by_the_next_run_of_this_process(s3, profile):
    first = lease(s3, profile, "backup")
    first.acquire()
    lines: list[str] = []
    unreachable = profile.backup.model_copy(update={"endpoint": "http://127.0.0.1:9"})
    first.s3, first.log = store.client(profile.model_copy(update={"backup": unreachable})), lines.append
    first.release()  # the store is gone at the end of the run: the lease stays behind
    assert lines[0].startswith("local: the backup lease could not be removed (") and "it expires at" in lines[0]
    assert read_lease(s3, profile.backup.bucket, profile.name)[0].token == first.record.token
    lines.clear()
    second = lease(s3, profile, "backup", wait=0, log=lines.append)
    second.acquire()
    assert lines == [
        f"local: took over the backup lease of {first.record.describe()} (that run is no longer "
        "running on this controller)"
    ]
    second.release()


def test_a_live_run_renews_its_lease_and_one_taken_over_is_known_lost(s3, profile):
    holder = lease(s3, profile, "backup", ttl=3)
    holder.acquire()
    first_expiry = holder.record.expires
    time.sleep(4.5)  # past the first expiry: only renewal keeps it
    record, _ = read_lease(s3, profile.backup.bucket, profile.name)
    assert record.token == holder.record.token and record.expires > first_expiry
    assert not record.expired(datetime.datetime.now(datetime.timezone.utc))
    intruder = LeaseRecord("ops@elsewhere", 1, "restore", "i" * 32, record.acquired, "2099-01-01T00:00:00+00:00")
    s3.put_object(Bucket=profile.backup.bucket, Key=f"local/{LEASE}", Body=json.dumps(intruder.__dict__).encode())
    time.sleep(1.5)  # one renewal later
    with pytest.raises(LeaseLost, match="lost its backup lease to ops@elsewhere"):
        holder.check()
    holder.release()
    assert read_lease(s3, profile.backup.bucket, profile.name)[0].token == intruder.token  # not ours to remove


# -- retention and restore markers beside live runs ------------------------------------------------


def test_retention_leaves_a_leased_set_alone_and_removes_it_once_its_run_is_dead(s3, profile):
    old = write_set(s3, profile)
    newer = write_set(s3, profile)
    writing = lease(s3, profile, "backup")
    writing.acquire()
    running = write_set(s3, profile, finish=False)
    writing.note(running.manifest.set_id)
    dead = write_set(s3, profile, finish=False)  # older than `running`, newer than every complete set
    assert engine.expiring(profile) == []  # a run is live: no incomplete set is known dead
    with pytest.raises(LeaseHeld, match=f"running backup of set {running.manifest.set_id}"):
        engine.expire(profile, log=lambda line: None)
    assert {running.manifest.set_id, dead.manifest.set_id} <= set(list_sets(s3, profile.backup.bucket, "local"))
    writing._stop.set()  # the run is killed: its lease is no longer renewed, then expires
    writing._renewer.join()
    expired_record = LeaseRecord(**{**writing.record.__dict__, "expires": "2026-01-01T00:00:00+00:00"})
    s3.put_object(Bucket=profile.backup.bucket, Key=f"local/{LEASE}", Body=json.dumps(expired_record.__dict__).encode())
    lines: list[str] = []
    removed = engine.expire(
        profile.model_copy(update={"backup": profile.backup.model_copy(update={"keep_last": 1})}), log=lines.append
    )
    assert sorted(removed) == sorted([old.manifest.set_id, running.manifest.set_id, dead.manifest.set_id])
    assert list(list_sets(s3, profile.backup.bucket, "local")) == [newer.manifest.set_id]
    assert lines[0].startswith("local: took over the backup lease of") and lines[0].endswith("(that run is expired)")
    assert read_lease(s3, profile.backup.bucket, "local") == (None, None)


def test_a_stale_restore_marker_is_cleared_and_reported_and_a_live_one_is_kept(s3, profile):
    stale, live, newest = write_set(s3, profile), write_set(s3, profile), write_set(s3, profile)
    killed = lease(s3, profile, "restore")  # a restore killed while it read `stale`: its lease is gone
    killed_marker = killed.marker()
    mark_in_use(s3, profile.backup.bucket, stale.manifest, killed_marker)
    staging_restore = Lease(s3, profile.backup.bucket, "staging", "restore", 300, 0, lambda line: None)
    staging_restore.acquire()  # another environment's live run reads `live`
    mark_in_use(s3, profile.backup.bucket, live.manifest, staging_restore.marker())
    lines: list[str] = []
    keep_one = profile.model_copy(update={"backup": profile.backup.model_copy(update={"keep_last": 1})})
    removed = engine.expire(keep_one, log=lines.append)
    assert lines[0] == (
        f"local: cleared a stale restore-in-progress marker on set {stale.manifest.set_id} left by "
        f"{killed.record.holder}'s restore of {json.loads(killed_marker)['since']} (no live lease "
        "holds it: that run was stopped before it finished)"
    )
    assert removed == [stale.manifest.set_id]  # `live` is being read, `newest` is kept
    listing = list_sets(s3, profile.backup.bucket, "local")
    assert listing[live.manifest.set_id]["in_use"] and newest.manifest.set_id in listing
    staging_restore.release()


# -- a service's restore refused before its swap ---------------------------------------------------


class StagingRedis:
    """A stand-in for a role's backup module that restores as the roles do: what it reads is staged
    beside the live data, and swapped in only once the read is over and its figures match."""

    SERVICE, DEPENDANTS = "redis", ()
    live = {"db0": "live data"}

    def __init__(self, s3=None, changed_set: str = "", figures: dict | None = None):
        self.s3, self.changed_set, self.staged_figures = s3, changed_set, figures

    def applies(self, profile) -> bool:
        return True

    def restore(self, job):
        for name in job.names:
            if self.changed_set:  # another writer replaces the object after the set was verified
                key = f"{prefix(job.profile.name, self.changed_set)}{job.node.name}/redis/{name}"
                self.s3.put_object(Bucket=job.profile.backup.bucket, Key=key, Body=b"REDIS0011 other data")
            with job.open(name) as stream:
                staged = stream.read()
            if self.staged_figures is not None and self.staged_figures != job.figures:
                raise RestoreRefused(f"the staged copy holds {self.staged_figures}, the manifest says {job.figures}")
            type(self).live = {"db0": staged.decode()}
        return job.figures

    def drill(self, job):
        for name in job.names:
            with job.open(name) as stream:
                stream.read()
            if self.staged_figures is not None:
                raise RestoreRefused(f"the drill's copy holds {self.staged_figures}")
        return job.figures


@pytest.mark.parametrize("case", ["object changed", "figures differ"])
def test_a_restore_refused_before_the_swap_keeps_the_live_data_and_says_so(s3, profile, monkeypatch, case):
    writer = write_set(s3, profile)
    StagingRedis.live = {"db0": "live data"}
    module = StagingRedis(
        s3,
        changed_set=writer.manifest.set_id if case == "object changed" else "",
        figures={"db0": 1} if case == "figures differ" else None,
    )
    monkeypatch.setattr(engine, "service_parts", lambda: (module,))
    plan = engine.plan_restore(profile, engine.choose_set(profile, "latest"))
    lines: list[str] = []
    with pytest.raises(RestoreRefused) as refused:
        engine.restore(profile, plan, log=lines.append)
    why = (
        f"local/{writer.manifest.set_id}/local-server/redis/dump.rdb changed in the bucket while it was being restored"
        if case == "object changed"
        else "the staged copy holds {'db0': 1}, the manifest says {'db0': 2}"
    )
    assert f"restore of redis on local-server refused before the swap: {why}" in str(refused.value)
    assert str(refused.value).endswith("; the live data was kept")
    assert any(line.startswith("restore of redis on local-server refused before the swap") for line in lines)
    assert StagingRedis.live == {"db0": "live data"}
    listing = list_sets(s3, profile.backup.bucket, "local")
    assert not listing[writer.manifest.set_id]["in_use"]  # the marker went with the run
    assert read_lease(s3, profile.backup.bucket, "local") == (None, None)


def test_a_drill_whose_copy_is_refused_fails_and_says_why(s3, profile, monkeypatch):
    write_set(s3, profile)
    monkeypatch.setattr(engine, "service_parts", lambda: (StagingRedis(figures={"db0": 1}),))
    report = engine.drill(
        profile, engine.plan_restore(profile, engine.choose_set(profile, "latest")), log=lambda line: None
    )
    assert not report["passed"]
    assert report["services"]["local-server/redis"]["differences"] == [
        "the restored copy was refused: the drill's copy holds {'db0': 1}"
    ]


def test_a_restore_that_matches_swaps(s3, profile, monkeypatch):
    write_set(s3, profile)
    StagingRedis.live = {"db0": "live data"}
    monkeypatch.setattr(engine, "service_parts", lambda: (StagingRedis(),))
    plan = engine.plan_restore(profile, engine.choose_set(profile, "latest"))
    assert engine.restore(profile, plan, log=lambda line: None) == {"local-server/redis": []}
    assert StagingRedis.live == {"db0": "REDIS0011 known data"}


def test_the_stored_manifest_is_the_set_s_manifest_and_its_signature(s3, profile):
    writer = write_set(s3, profile)
    data = manifest_body(s3, profile, writer)
    signature = data.pop("signature")
    assert Manifest.from_json(json.dumps(data)) == writer.manifest
    assert set(signature) == {"algorithm", "key_id", "mac"} and len(signature["mac"]) == 64


# -- the deploys, on the controller only -----------------------------------------------------------


@pytest.fixture(scope="module")
def inventory(profile, tmp_path_factory):
    """A pyinfra inventory of the local profile with the backup endpoint of this store (the deploys run
    with `--limit controller`: no lane host is contacted)."""
    directory = tmp_path_factory.mktemp("inventory")
    raw = yaml.safe_load((REPO_ROOT / "inventories" / "local.yml").read_text())
    raw.pop("lane", None)  # not this checkout's lane hosts: only the controller is reached
    raw["services"]["object_store"] = {"enabled": False}
    raw["backup"].update({"endpoint": str(profile.backup.endpoint), "lease_wait": 3})
    (directory / "local.yml").write_text(yaml.safe_dump(raw))
    path = directory / "local.py"
    loader = f"load_groups({str(directory / 'local.yml')!r})"
    path.write_text(f"from gpuaas.inventory import load_groups\n\nglobals().update({loader})\n")
    return path


def run_deploy(inventory, deploy: str, env: dict | None = None) -> str:
    """The deploy's output (stdout and stderr); it must fail."""
    done = subprocess.run(
        ["pyinfra", "-y", "--limit", "controller", str(inventory), deploy],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode != 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_the_restore_deploy_refuses_a_tampered_set_naming_it_without_a_traceback(s3, profile, inventory):
    writer = write_set(s3, profile)
    data = manifest_body(s3, profile, writer)
    data["services"]["local-server/redis"]["figures"] = {"db0": 0}
    put_manifest(s3, profile, writer, data)
    output = run_deploy(inventory, "deploys/restore.py", {"GPUAAS_CONFIRM": "restore local"})
    assert (
        f"backup set local/{writer.manifest.set_id}: its manifest is not signed with this environment's manifest "
        "key (backup.manifest_key): its content was changed after it was signed; nothing was changed"
    ) in output
    assert "Traceback" not in output
    assert read_lease(s3, profile.backup.bucket, "local") == (None, None)


def test_the_backup_deploy_refuses_while_another_run_holds_the_lease(s3, profile, inventory):
    holder = lease(s3, profile, "restore")
    holder.acquire()
    try:
        output = run_deploy(inventory, "deploys/backup.py")
    finally:
        holder.release()
    assert (
        f"local: another run holds the backup lease: {holder.record.holder} (pid {holder.record.pid}), running "
        f"restore since {holder.record.acquired}, lease expiring "
    ) in output
    assert "backup waited 3s and was refused, nothing was changed" in output
    assert "Traceback" not in output
    assert list_sets(s3, profile.backup.bucket, "local") == {}  # no set was started
