"""Backup and restore of roles/nats: every JetStream stream as the server's own snapshot (the
`$JS.API.STREAM.SNAPSHOT` API, chunks acknowledged one by one, so the server paces itself to the
upload) with its configuration and state; restored through `$JS.API.STREAM.RESTORE`.

The controller speaks to the server as a client (the NATS client port of the data host), the way
the nats CLI's `stream backup` does."""

from __future__ import annotations

import asyncio
import io
import json
import queue
import threading
from collections.abc import Coroutine
from typing import Any

import nats
from nats.errors import Error as NatsError

from gpuaas.backup.service import BackupJob, RestoreJob, ServiceHost
from gpuaas.backup.transport import HostCommandError
from gpuaas.profile import Profile
from gpuaas.secrets import resolve
from roles.nats.config import PROGRAM_LINK, settings_for

SERVICE = "nats"
DEPENDANTS: tuple[str, ...] = ()
CHUNK = 128 * 1024
TIMEOUT = 30
API = "$JS.API"
#: The scratch server of a restore drill listens this far above the client port.
DRILL_PORT_OFFSET = 10000
DRILL_UNIT = "gpuaas-nats-drill"


def applies(profile: Profile) -> bool:
    return True


_LOOP: asyncio.AbstractEventLoop | None = None


def _event_loop() -> asyncio.AbstractEventLoop:
    """One event loop, in a thread of its own, for every connection of the process: under pyinfra's
    gevent, threads are greenlets of one OS thread, where a second running loop is refused."""
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
        threading.Thread(target=_LOOP.run_forever, daemon=True, name="nats-client").start()
    return _LOOP


class _Client:
    """A NATS connection driven from synchronous code through an event loop of its own thread."""

    def __init__(self, target: ServiceHost, port: int | None = None):
        """The host's server, or (`port`) a scratch server there that takes no credentials."""
        settings = settings_for(target.profile)
        self.node = target.node.name
        self.loop = _event_loop()
        login = {} if port else {"user": settings.user,
                                 "password": resolve(target.profile, settings.password).reveal()}  # fmt: skip
        self.connection = self.call(nats.connect(
            servers=[f"nats://{target.node.address}:{port or settings.port}"], connect_timeout=10,
            allow_reconnect=False, max_reconnect_attempts=0, **login,
        ))  # fmt: skip

    def call(self, coroutine: Coroutine, timeout: float = 600) -> Any:
        try:
            return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)
        except (NatsError, OSError, asyncio.TimeoutError, TimeoutError) as error:
            raise HostCommandError(f"{self.node}: NATS: {type(error).__name__} {error}".rstrip()) from None

    def api(self, subject: str, body: dict | None = None) -> dict:
        payload = json.dumps(body).encode() if body is not None else b""
        reply = self.call(self.connection.request(f"{API}.{subject}", payload, timeout=TIMEOUT))
        answer = json.loads(reply.data)
        if answer.get("error"):
            raise HostCommandError(f"{self.node}: NATS {subject}: {answer['error'].get('description')}")
        return answer

    def close(self) -> None:
        self.call(self.connection.drain(), timeout=10)


def _stream_names(client: _Client) -> list[str]:
    names: list[str] = []
    while True:
        page = client.api("STREAM.NAMES", {"offset": len(names)})
        names += page.get("streams") or []
        if not page.get("streams") or len(names) >= page.get("total", 0):
            return names


def _figure(state: dict) -> dict:
    return {key: state.get(key, 0) for key in ("messages", "bytes", "first_seq", "last_seq")}


def figures(target: ServiceHost) -> dict:
    """{stream: {messages, bytes, first_seq, last_seq}} for every stream."""
    client = _Client(target)
    try:
        return {name: _figure(client.api(f"STREAM.INFO.{name}")["state"]) for name in _stream_names(client)}
    finally:
        client.close()


class _Snapshot(io.RawIOBase):
    """A stream's snapshot as a readable stream: chunks are queued as they arrive (a few at most, the
    server waits for each acknowledgement) and acknowledged once queued."""

    def __init__(self, client: _Client, stream: str):
        super().__init__()
        self.client, self.chunks, self.pending, self.failure = client, queue.Queue(maxsize=8), b"", None
        inbox = client.connection.new_inbox()
        self.subscription = client.call(client.connection.subscribe(inbox, cb=self._chunk))
        self.answer = client.api(f"STREAM.SNAPSHOT.{stream}", {"deliver_subject": inbox, "chunk_size": CHUNK})

    async def _chunk(self, message) -> None:
        if not message.data:
            # The end: a bare message, or a status header (2xx when the snapshot is whole).
            headers = message.headers or {}
            status = headers.get("Status", "")
            if status and not status.startswith("2"):
                self.failure = f"{status} {headers.get('Description', '')}".strip()
            await asyncio.get_running_loop().run_in_executor(None, self.chunks.put, None)
            return
        await asyncio.get_running_loop().run_in_executor(None, self.chunks.put, message.data)
        if message.reply:
            await message.respond(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.pending:
            chunk = self.chunks.get(timeout=TIMEOUT * 4)
            if chunk is None:
                self.chunks.put(None)
                if self.failure:
                    raise HostCommandError(f"{self.client.node}: NATS snapshot failed: {self.failure}")
                return 0
            self.pending = chunk
        size = min(len(buffer), len(self.pending))
        buffer[:size], self.pending = self.pending[:size], self.pending[size:]
        return size

    def close(self) -> None:
        if not self.closed:
            self.client.call(self.subscription.unsubscribe(), timeout=10)
        super().close()


def back_up(job: BackupJob) -> None:
    """For each stream: STREAM.json (configuration and state) and STREAM.snapshot (the server's own
    snapshot, consumers included); the state the snapshot was taken at is what a restore must show."""
    client = _Client(job)
    try:
        version = client.connection.connected_server_version
        counted = {}
        for name in _stream_names(client):
            snapshot = _Snapshot(client, name)
            with snapshot:
                job.upload(f"{name}.snapshot", io.BufferedReader(snapshot, CHUNK))
            meta = {"config": snapshot.answer["config"], "state": snapshot.answer["state"]}
            job.upload(f"{name}.json", io.BytesIO(json.dumps(meta, indent=2, sort_keys=True).encode()))
            counted[name] = _figure(snapshot.answer["state"])
        job.record(f"{version.major}.{version.minor}.{version.patch}", counted)
    finally:
        client.close()


def _restore_streams(client: _Client, job: RestoreJob) -> dict:
    """Each stream in the set replaces the one of the same name (deleted first), chunk by chunk with
    every chunk acknowledged by the server; streams not in the set are left alone. Their figures."""
    present = set(_stream_names(client))
    restored = {}
    for name in sorted(n.removesuffix(".json") for n in job.names if n.endswith(".json")):
        with job.open(f"{name}.json") as stream:
            meta = json.loads(stream.read())
        if name in present:
            client.api(f"STREAM.DELETE.{name}")
        deliver = client.api(f"STREAM.RESTORE.{name}", meta)["deliver_subject"]
        with job.open(f"{name}.snapshot") as snapshot:
            while chunk := snapshot.read(CHUNK):
                client.call(client.connection.request(deliver, chunk, timeout=TIMEOUT))
        done = json.loads(client.call(client.connection.request(deliver, b"", timeout=TIMEOUT * 4)).data)
        if done.get("error"):
            raise HostCommandError(f"{job.node.name}: NATS restore of {name}: {done['error'].get('description')}")
        restored[name] = _figure(done["state"])
    return restored


def restore(job: RestoreJob) -> None:
    client = _Client(job)
    try:
        _restore_streams(client, job)
    finally:
        client.close()


def drill(job: RestoreJob) -> dict:
    """Restore the streams into a scratch nats-server on the host (a transient systemd unit on its
    own port and store directory, no credentials, removed afterwards) and read their figures."""
    settings = settings_for(job.profile)
    port, scratch = settings.port + DRILL_PORT_OFFSET, "/var/tmp/gpuaas-nats-drill"
    job.shell.run(f"systemctl stop {DRILL_UNIT} 2>/dev/null; rm -rf {scratch} && "
                  f"systemd-run --unit {DRILL_UNIT} --quiet {PROGRAM_LINK} -js -sd {scratch} "
                  f"-a {job.node.address} -p {port} && for i in $(seq 40); do "
                  f"bash -c 'exec 3<>/dev/tcp/{job.node.address}/{port}' 2>/dev/null && exit 0; sleep 0.25; done; "
                  "exit 1", "starting a scratch nats-server")  # fmt: skip
    try:
        client = _Client(job, port=port)
        try:
            return _restore_streams(client, job)
        finally:
            client.close()
    finally:
        job.shell.run(f"systemctl stop {DRILL_UNIT}; rm -rf {scratch}", "removing the scratch nats-server")
