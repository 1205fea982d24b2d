"""Restores of NATS, Redis and OpenBao on the local data host that fail half-way (a stream that breaks,
an artifact altered in transit, figures that differ, a run killed) leave the live data as it was, and
the next restore succeeds; OpenBao's restore and drill are proved by a canary secret; the drill's
scratch NATS listens on loopback only and asks for a password."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import nats
import pytest
import redis

from gpuaas.backup import engine, store
from gpuaas.backup.service import RestoreJob, RestoreRefused, differences
from gpuaas.backup.sets import prefix
from gpuaas.backup.transport import HostShell
from gpuaas.profile import REPO_ROOT, load_profile
from roles.nats import backup as nats_backup
from roles.openbao import backup as openbao_backup
from roles.redis import backup as redis_backup
from tests.lane_clients import SERVER, bao, secret
from tests.local_variant import converge, on_server
from tests.streams import BreakingStream

pytestmark = pytest.mark.hosts

STREAM = "RESTORE_PROBE"
MODULES = {"nats": nats_backup, "redis": redis_backup, "openbao": openbao_backup}


class Artifacts:
    """One service's objects of a set, held in memory (test sets are small) and opened the way the
    engine opens them: the sha256 of what was read is checked when the block ends."""

    def __init__(self, profile, set_id: str, service: str):
        self.profile = profile
        self.node = profile.group("data")[0]
        s3 = store.client(profile)
        manifest = engine.choose_set(profile, set_id)
        base = f"{prefix(manifest.environment, manifest.set_id)}{self.node.name}/{service}/"
        entries = {entry.key.removeprefix(base): entry for entry in manifest.objects if entry.key.startswith(base)}
        self.sha256 = {name: entry.sha256 for name, entry in entries.items()}
        self.data = {
            name: s3.get_object(Bucket=profile.backup.bucket, Key=entry.key)["Body"].read()
            for name, entry in entries.items()
        }
        self.figures = manifest.services[f"{self.node.name}/{service}"]["figures"]

    def job(
        self, figures: dict | None = None, names: list[str] | None = None, breaks: str = "", altered: str = ""
    ) -> RestoreJob:
        """A restore job; `breaks` fails half-way, `altered` arrives with one byte changed."""

        @contextmanager
        def opened(name: str):
            data = self.data[name]
            if name == altered:
                data = data[:-1] + bytes([data[-1] ^ 1])
            yield BreakingStream(data) if name == breaks else io.BytesIO(data)
            if hashlib.sha256(data).hexdigest() != self.sha256[name]:
                raise RestoreRefused(f"{name} changed in the bucket while it was being restored")

        return RestoreJob(
            self.profile,
            self.node,
            HostShell(self.profile, self.node),
            names=names if names is not None else sorted(self.data),
            open=opened,
            figures=figures if figures is not None else self.figures,
        )


def back_up(profile, service: str) -> str:
    """A new set of `service` alone; its id."""
    return engine.back_up(profile, log=lambda line: None, services=(MODULES[service],)).set_id


def killed_restore(profile, service: str, set_id: str, moment: str) -> None:
    """A restore of `set_id` in a process of its own, killed (with its ssh children) once `moment`
    (a shell test on the data host) holds."""
    code = (
        "import sys; from tests.test_restore_services_hosts import Artifacts, MODULES; "
        "from gpuaas.profile import load_profile; p = load_profile('local'); "
        "MODULES[sys.argv[1]].restore(Artifacts(p, sys.argv[2], sys.argv[1]).job())"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, service, set_id],
        cwd=REPO_ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if subprocess.run(["docker", "exec", "local-server", "sh", "-c", moment], check=False).returncode == 0:
                break
            time.sleep(0.2)
        assert process.poll() is None, "the restore ended before the moment to kill it"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def profile(local_hosts):
    converge(REPO_ROOT / "inventories" / "local.py")
    return load_profile("local")


# NATS


def _nats(profile, coroutine, address: str = SERVER, port: int = 4222, **login):
    async def run():
        login.setdefault("user", "platform")
        login.setdefault("password", secret(profile, "nats_password"))
        client = await nats.connect(f"nats://{address}:{port}", allow_reconnect=False, connect_timeout=5, **login)
        try:
            return await coroutine(client.jetstream())
        finally:
            await client.close()

    return asyncio.run(run())


def _messages(profile) -> list[bytes]:
    async def fetch(js):
        info = await js.stream_info(STREAM)
        return [(await js.get_msg(STREAM, seq)).data for seq in range(info.state.first_seq, info.state.last_seq + 1)]

    return _nats(profile, fetch)


def _publish(profile, payloads: list[bytes], fresh: bool = False) -> None:
    async def publish(js):
        if fresh:
            try:
                await js.delete_stream(STREAM)
            except nats.js.errors.NotFoundError:
                pass
            await js.add_stream(name=STREAM, subjects=["restore-probe.>"])
        for payload in payloads:
            await js.publish("restore-probe.x", payload)

    _nats(profile, publish)


def _nats_leftovers(profile) -> str:
    staging = nats_backup.staging_dir(profile)
    return (
        on_server(
            f"ls -d {staging} {staging}.done 2>/dev/null; systemctl is-active {nats_backup.DRILL_UNIT} "
            "2>/dev/null; true"
        )
        .replace("inactive", "")
        .strip()
    )


@pytest.fixture(scope="module")
def nats_set(profile):
    """A set holding STREAM with 40 messages; the live stream then has 5 more (what must survive)."""
    backed_up = [os.urandom(300) for _ in range(40)]
    _publish(profile, backed_up, fresh=True)
    set_id = back_up(profile, "nats")
    live = backed_up + [b"after the backup %d" % index for index in range(5)]
    _publish(profile, live[40:])
    return set_id, backed_up, live


def test_a_nats_restore_that_breaks_or_differs_leaves_the_live_stream(profile, nats_set):
    set_id, _, live = nats_set
    artifacts = Artifacts(profile, set_id, "nats")
    with pytest.raises(ConnectionResetError, match="the bucket connection dropped"):
        nats_backup.restore(artifacts.job(breaks=f"{STREAM}.snapshot"))
    assert _messages(profile) == live
    with pytest.raises(RestoreRefused, match="changed in the bucket"):
        nats_backup.restore(artifacts.job(altered=f"{STREAM}.snapshot"))
    assert _messages(profile) == live
    wrong = {**artifacts.figures, STREAM: {**artifacts.figures[STREAM], "messages": 41}}
    with pytest.raises(RestoreRefused, match="differ from the manifest.*the live streams were not touched"):
        nats_backup.restore(artifacts.job(figures=wrong))
    assert _messages(profile) == live
    assert _nats_leftovers(profile) == ""


def test_a_nats_restore_refuses_names_the_set_does_not_count(profile, nats_set):
    set_id, _, live = nats_set
    artifacts = Artifacts(profile, set_id, "nats")
    for names, figures in (
        (["../x.json", "../x.snapshot"], {"../x": {}}),
        ([f"{STREAM}.json", f"{STREAM}.snapshot"], {"OTHER": {}}),
    ):
        with pytest.raises(RestoreRefused, match="NATS restore refused.*nothing was changed"):
            nats_backup.restore(artifacts.job(names=names, figures=figures))
    assert _messages(profile) == live


def test_a_killed_nats_restore_is_rolled_back_by_the_next_which_succeeds(profile, nats_set, caplog):
    set_id, backed_up, live = nats_set
    killed_restore(profile, "nats", set_id, f"systemctl is-active -q {nats_backup.DRILL_UNIT}")
    assert _messages(profile) == live
    # A swap cut short after moving the live stream aside: what the journal must undo.
    shell = HostShell(profile, profile.group("data")[0])
    job = Artifacts(profile, set_id, "nats").job()
    streams = nats_backup._live_streams_dir(job)
    swap = nats_backup.staging_dir(profile) + "/swap"
    shell.run(
        f"systemctl stop nats && install -d -m 700 {swap}/old && : > {swap}/added && "
        f"printf '%s\\n' '{streams}' > {swap}/live && mv '{streams}/{STREAM}' {swap}/old/{STREAM}",
        "cutting a swap short",
    )
    with caplog.at_level(logging.WARNING):
        found = nats_backup.restore(job)
    assert "an unfinished restore was rolled back (put back RESTORE_PROBE)" in caplog.text
    assert "removed the scratch store an earlier restore or drill left" in caplog.text
    assert differences(job.figures, found) == []
    assert _messages(profile) == backed_up
    assert _nats_leftovers(profile) == ""


def test_the_nats_drill_scratch_server_is_on_loopback_with_a_password(profile, nats_set):
    set_id, backed_up, _ = nats_set
    job = Artifacts(profile, set_id, "nats").job()
    port = nats_backup._scratch_port(profile)
    nats_backup._start_scratch(job)
    try:
        with pytest.raises(OSError):
            socket.create_connection((SERVER, port), timeout=3).close()
        listening = on_server(f"ss -Htln 'sport = :{port}'")
        assert "127.0.0.1:" in listening and SERVER not in listening
        unauthenticated = on_server(
            f"timeout 3 python3 -c \"import socket; s = socket.create_connection(('127.0.0.1', "
            f"{port})); s.recv(4096); s.sendall(b'CONNECT {{}}\\r\\nPING\\r\\n'); "
            'print(s.recv(4096))"'
        )
        assert "Authorization Violation" in unauthenticated
    finally:
        nats_backup._stop_scratch(job)
    assert nats_backup.drill(job) == job.figures
    assert _nats_leftovers(profile) == ""


def test_the_nats_backup_sends_no_password_over_the_network(profile, nats_set):
    """The controller's connection is carried by the SSH session to the relay on the host: the client
    speaks over a local socket pair, never over TCP to the client port."""
    job = Artifacts(profile, nats_set[0], "nats").job()
    client = nats_backup.Client(job)
    try:
        assert isinstance(client.transport.process, subprocess.Popen)
        carried_by = client.connection._transport._io_writer.get_extra_info("socket")
        assert carried_by.family == socket.AF_UNIX  # a socket pair with the ssh process, no TCP of its own
        assert STREAM in nats_backup.stream_names(client)
    finally:
        client.close()


# Redis


def _redis(profile) -> redis.Redis:
    return redis.Redis(host=SERVER, port=6379, password=secret(profile, "redis_password"))


def _redis_leftovers() -> str:
    return on_server(f"ls -A /var/lib/redis | grep -x '{redis_backup.STAGING}' || true").strip()


@pytest.fixture(scope="module")
def redis_set(profile):
    client = _redis(profile)
    client.flushall()
    backed_up = {f"restore:{index}": os.urandom(50) for index in range(60)}
    client.mset(backed_up)
    set_id = back_up(profile, "redis")
    client.set("restore:after-the-backup", b"live")
    return set_id, backed_up


def _redis_values(profile) -> dict:
    client = _redis(profile)
    keys = sorted(client.keys("restore:*"))
    return dict(zip(keys, client.mget(keys), strict=True))


def test_a_redis_restore_that_breaks_or_differs_leaves_the_live_data(profile, redis_set):
    set_id, _ = redis_set
    artifacts = Artifacts(profile, set_id, "redis")
    live = _redis_values(profile)
    assert b"restore:after-the-backup" in live
    with pytest.raises(ConnectionResetError, match="the bucket connection dropped"):
        redis_backup.restore(artifacts.job(breaks=redis_backup.ARTIFACT))
    assert _redis_values(profile) == live
    with pytest.raises(RestoreRefused, match="changed in the bucket"):
        redis_backup.restore(artifacts.job(altered=redis_backup.ARTIFACT))
    assert _redis_values(profile) == live
    with pytest.raises(RestoreRefused, match="differs from the manifest.*the live data was not touched"):
        redis_backup.restore(artifacts.job(figures={"db0": 61}))
    assert _redis_values(profile) == live
    with pytest.raises(RestoreRefused, match="Redis restore refused"):
        redis_backup.restore(artifacts.job(names=["../dump.rdb"]))
    assert _redis_values(profile) == live
    assert _redis_leftovers() == ""


def test_a_killed_redis_restore_leaves_the_live_data_and_the_next_succeeds(profile, redis_set, caplog):
    set_id, backed_up = redis_set
    live = _redis_values(profile)
    killed_restore(profile, "redis", set_id, f"test -e /var/lib/redis/{redis_backup.STAGING}/new.rdb")
    assert _redis_values(profile) == live
    # A swap cut short after the live files were moved aside (Redis stopped): what the journal undoes.
    staging = f"/var/lib/redis/{redis_backup.STAGING}"
    on_server(
        f"install -d -m 700 -o redis -g redis {staging} && touch {staging}/swapping && "
        f"systemctl stop redis-server && mv /var/lib/redis/appendonlydir {staging}/old-aof && "
        "systemctl start redis-server"
    )
    job = Artifacts(profile, set_id, "redis").job()
    with caplog.at_level(logging.WARNING):
        found = redis_backup.restore(job)
    assert "Redis: an unfinished restore was rolled back" in caplog.text
    assert found == job.figures
    assert _redis_values(profile) == {key.encode(): value for key, value in sorted(backed_up.items())}
    assert _redis_leftovers() == ""


def test_the_redis_drill_uses_the_restore_staging_and_leaves_nothing(profile, redis_set):
    job = Artifacts(profile, redis_set[0], "redis").job()
    assert redis_backup.drill(job) == job.figures
    assert _redis_leftovers() == ""


# OpenBao


AFTER = f"{openbao_backup.CANARY_MOUNT}/data/written-after-the-backup"


@pytest.fixture(scope="module")
def openbao_set(profile):
    set_id = back_up(profile, "openbao")
    bao(profile, "POST", AFTER, {"data": {"value": "live"}})
    return set_id


def _bao_leftovers(profile) -> str:
    staging = openbao_backup.staging_dir(profile)
    return (
        on_server(f"ls -d {staging} 2>/dev/null; systemctl is-active {openbao_backup.DRILL_UNIT} 2>/dev/null; true")
        .replace("inactive", "")
        .strip()
    )


def test_the_openbao_backup_records_the_canary_digest_never_its_value(profile, openbao_set):
    artifacts = Artifacts(profile, openbao_set, "openbao")
    digest = artifacts.figures["canary"]
    value = bao(profile, "GET", openbao_backup.CANARY_PATH)["data"]["data"]["value"]
    assert digest == hashlib.sha256(value.encode()).hexdigest() and len(value) == 64
    assert value not in json.dumps(artifacts.figures)


def test_an_openbao_restore_against_another_state_fails_and_leaves_the_live_server(profile, openbao_set):
    artifacts = Artifacts(profile, openbao_set, "openbao")
    other = {**artifacts.figures, "canary": hashlib.sha256(b"another state").hexdigest()}
    with pytest.raises(RestoreRefused, match="does not hold the state the manifest recorded.*canary.*not touched"):
        openbao_backup.restore(artifacts.job(figures=other))
    assert bao(profile, "GET", AFTER)["data"]["data"]["value"] == "live"
    drilled = openbao_backup.drill(artifacts.job(figures=other))
    assert differences(other, drilled) == [f"canary: expected {other['canary']}, found {artifacts.figures['canary']}"]
    with pytest.raises(ConnectionResetError, match="the bucket connection dropped"):
        openbao_backup.restore(artifacts.job(breaks=openbao_backup.ARTIFACT))
    assert bao(profile, "GET", AFTER)["data"]["data"]["value"] == "live"
    assert _bao_leftovers(profile) == ""


def test_a_killed_openbao_restore_leaves_the_live_server_and_the_next_restores_the_canary(profile, openbao_set, caplog):
    artifacts = Artifacts(profile, openbao_set, "openbao")
    killed_restore(profile, "openbao", openbao_set, f"systemctl is-active -q {openbao_backup.DRILL_UNIT}")
    assert bao(profile, "GET", AFTER)["data"]["data"]["value"] == "live"
    with caplog.at_level(logging.WARNING):
        found = openbao_backup.restore(artifacts.job())
    assert "removed the staged files an earlier restore or drill left" in caplog.text
    assert found == artifacts.figures and found["canary"] != "absent"
    assert openbao_backup.figures(artifacts.job()) == artifacts.figures
    assert bao(profile, "GET", AFTER) == {}  # the state of the backup, not the later one
    assert openbao_backup.drill(artifacts.job()) == artifacts.figures
    assert _bao_leftovers(profile) == ""
