"""Backup and restore of roles/nats: every JetStream stream as the server's own snapshot (the
`$JS.API.STREAM.SNAPSHOT` API, chunks acknowledged one by one, so the server paces itself to the
upload) with its configuration and state; restored through `$JS.API.STREAM.RESTORE`.

The controller speaks to a server as a client, the way the nats CLI's `stream backup` does, but its
connection is carried by the SSH session to a relay on the data host that dials the server there:
NATS sends a client's password as plain text, so it never crosses the network in clear.

A restore never loses the live streams: the set is restored into a scratch nats-server on the
host's loopback (a password of its own, a store directory beside the live one) and compared with the
manifest; only then, with the live server stopped, are the stream directories swapped, each old one
kept aside until the live server shows the manifest's figures. A run cut short at any step is rolled
back to the live streams as they were by the next one."""

from __future__ import annotations

import asyncio
import io
import json
import posixpath
import queue
import re
import secrets
import shlex
import socket
import subprocess
import threading
from collections.abc import Coroutine
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.transport import TcpTransport
from nats.errors import Error as NatsError
from pyinfra import logger

from gpuaas.backup.service import BackupJob, RestoreJob, RestoreRefused, ServiceHost, differences
from gpuaas.backup.transport import HostCommandError, HostShell
from gpuaas.profile import Profile
from gpuaas.secrets import Secret, resolve
from roles.nats.config import PROGRAM_LINK, monitor_url, settings_for

SERVICE = "nats"
DEPENDANTS: tuple[str, ...] = ()
UNIT = "nats"
CHUNK = 128 * 1024
TIMEOUT = 30
API = "$JS.API"
#: The scratch server of a restore or drill listens on loopback this far above the client port.
DRILL_PORT_OFFSET = 10000
DRILL_UNIT = "gpuaas-nats-drill"
SWAP_UNIT = "gpuaas-nats-swap"
#: What a stream may be called here: NATS forbids `.`, `*`, `>` and white space; path separators and
#: shell metacharacters are refused too, since the name becomes a directory on the host.
STREAM_NAME = re.compile(r"[A-Za-z0-9_-]{1,200}")
SCRATCH_USER = "restore"

#: Run on the host by the relay: stdin to the server, the server to stdout, until either side ends.
_RELAY = """
import os, socket, sys, threading
server = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
server.settimeout(None)
def upstream():
    while data := os.read(0, 65536):
        server.sendall(data)
    server.shutdown(socket.SHUT_WR)
threading.Thread(target=upstream, daemon=True).start()
while data := server.recv(65536):
    os.write(1, data)
"""


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


class _RelayTransport(TcpTransport):
    """nats-py's TCP transport over one end of a socket pair whose other end is the standard input and
    output of `ssh HOST python3 relay ADDRESS PORT`: the connection exists only inside SSH."""

    def __init__(self, shell: HostShell, address: str, port: int):
        super().__init__()
        self.shell, self.address, self.port = shell, address, port
        self.process: subprocess.Popen | None = None

    async def connect(self, uri, buffer_size: int, connect_timeout: int) -> None:
        ours, theirs = socket.socketpair()
        command = f"exec python3 -c {shlex.quote(_RELAY)} {shlex.quote(self.address)} {int(self.port)}"
        self.process = subprocess.Popen(
            self.shell.argv(command), stdin=theirs, stdout=theirs, stderr=subprocess.DEVNULL
        )
        theirs.close()
        reader, writer = await asyncio.wait_for(asyncio.open_connection(sock=ours, limit=buffer_size), connect_timeout)
        self._bare_io_reader = self._io_reader = reader
        self._bare_io_writer = self._io_writer = writer

    def ended(self) -> None:
        """Wait for the relay to finish once the connection is closed (it ends with the server's side)."""
        if self.process is not None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __bool__(self) -> bool:
        # The client makes a TCP transport of its own unless one is there (it tests truthiness).
        return True


class Client:
    """A NATS connection driven from synchronous code through an event loop of its own thread,
    carried to the server by a relay on the host."""

    def __init__(
        self,
        target: ServiceHost,
        address: str | None = None,
        port: int | None = None,
        login: tuple[str, Secret] | None = None,
    ):
        """The host's own server (its address and port, the profile's user), or a server on the host at
        `address`:`port` with `login`."""
        settings = settings_for(target.profile)
        user, password = login or (settings.user, resolve(target.profile, settings.password))
        self.node = target.node.name
        self.loop = _event_loop()
        self.transport = _RelayTransport(target.shell, address or str(target.node.address), port or settings.port)
        self.connection = NatsClient()
        self.connection._transport = self.transport  # the one way nats-py takes a connection it did not dial
        try:
            self.call(
                self.connection.connect(
                    servers=[f"nats://{self.transport.address}:{self.transport.port}"],
                    connect_timeout=10,
                    allow_reconnect=False,
                    max_reconnect_attempts=0,
                    user=user,
                    password=password.reveal(),
                )
            )
        except HostCommandError:
            self.transport.ended()
            raise

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
        try:
            self.call(self.connection.drain(), timeout=10)
        finally:
            self.transport.ended()


def stream_names(client: Client) -> list[str]:
    names: list[str] = []
    while True:
        page = client.api("STREAM.NAMES", {"offset": len(names)})
        names += page.get("streams") or []
        if not page.get("streams") or len(names) >= page.get("total", 0):
            return names


def figure(state: dict) -> dict:
    return {key: state.get(key, 0) for key in ("messages", "bytes", "first_seq", "last_seq")}


def _all_figures(client: Client) -> dict:
    return {name: figure(client.api(f"STREAM.INFO.{name}")["state"]) for name in stream_names(client)}


def figures(target: ServiceHost) -> dict:
    """{stream: {messages, bytes, first_seq, last_seq}} for every stream."""
    client = Client(target)
    try:
        return _all_figures(client)
    finally:
        client.close()


class Snapshot(io.RawIOBase):
    """A stream's snapshot as a readable stream: chunks are queued as they arrive (a few at most, the
    server waits for each acknowledgement) and acknowledged once queued."""

    def __init__(self, client: Client, stream: str):
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
    client = Client(job)
    try:
        version = client.connection.connected_server_version
        counted = {}
        for name in stream_names(client):
            snapshot = Snapshot(client, name)
            with snapshot:
                job.upload(f"{name}.snapshot", io.BufferedReader(snapshot, CHUNK))
            meta = {"config": snapshot.answer["config"], "state": snapshot.answer["state"]}
            job.upload(f"{name}.json", io.BytesIO(json.dumps(meta, indent=2, sort_keys=True).encode()))
            counted[name] = figure(snapshot.answer["state"])
        job.record(f"{version.major}.{version.minor}.{version.patch}", counted)
    finally:
        client.close()


def streams_in_set(job: RestoreJob) -> list[str]:
    """The streams the set holds, each as NAME.json and NAME.snapshot and named in the manifest's
    figures; HostCommandError naming what is wrong before anything is touched otherwise."""
    where = f"{job.node.name}: NATS restore refused (nothing was changed)"
    names = sorted({name.rsplit(".", 1)[0] for name in job.names})
    unexpected = sorted(set(job.names) - {f"{name}.{kind}" for name in names for kind in ("json", "snapshot")})
    bad = [name for name in names if not STREAM_NAME.fullmatch(name)]
    if unexpected or bad:
        raise RestoreRefused(
            f"{where}: {', '.join(unexpected + bad)} is not a stream artifact of this role "
            "(NAME.json and NAME.snapshot; a name of letters, digits, `_` and `-`)"
        )
    unlisted = [name for name in names if name not in job.figures] + sorted(set(job.figures) - set(names))
    halves = [name for name in names if {f"{name}.json", f"{name}.snapshot"} - set(job.names)]
    if unlisted or halves:
        counted = ", ".join(sorted(job.figures)) or "none"
        raise RestoreRefused(
            f"{where}: the set's streams ({', '.join(names) or 'none'}) do not match the "
            f"streams its manifest counted ({counted})"
        )
    return names


def restore_streams(client: Client, job: RestoreJob, names: list[str]) -> dict:
    """Each stream restored into the (empty) server `client` speaks to, chunk by chunk with every
    chunk acknowledged; every artifact's sha256 is checked as it is read, before the next step. The
    figures the server reports."""
    restored = {}
    for name in names:
        with job.open(f"{name}.json") as stream:
            meta = json.loads(stream.read())
        if meta.get("config", {}).get("name") != name:
            raise RestoreRefused(
                f"{job.node.name}: NATS restore refused: {name}.json configures another stream than its name says"
            )
        deliver = client.api(f"STREAM.RESTORE.{name}", meta)["deliver_subject"]
        with job.open(f"{name}.snapshot") as snapshot:
            while chunk := snapshot.read(CHUNK):
                client.call(client.connection.request(deliver, chunk, timeout=TIMEOUT))
        done = json.loads(client.call(client.connection.request(deliver, b"", timeout=TIMEOUT * 4)).data)
        if done.get("error"):
            raise HostCommandError(f"{job.node.name}: NATS restore of {name}: {done['error'].get('description')}")
        restored[name] = figure(done["state"])
    return restored


def staging_dir(profile: Profile) -> str:
    """Where a restore or drill works: beside the live store (one file system, so moves are renames)."""
    store = settings_for(profile).store_dir.rstrip("/")
    return store + ".restore"


def _scratch_port(profile: Profile) -> int:
    return settings_for(profile).port + DRILL_PORT_OFFSET


def _stop_scratch(target: ServiceHost) -> None:
    """Stop the scratch server and remove its store, and the staging directory when nothing else is
    in it (a swap journal, if any, is left alone)."""
    root = staging_dir(target.profile)
    scratch = shlex.quote(posixpath.join(root, "scratch"))
    target.shell.run(
        f"systemctl stop {DRILL_UNIT} 2>/dev/null; systemctl reset-failed {DRILL_UNIT} 2>/dev/null; "
        f"rm -rf {scratch}; rmdir {shlex.quote(root)} 2>/dev/null; true",
        "removing the scratch nats-server",
    )


def _start_scratch(target: ServiceHost) -> Secret:
    """A scratch nats-server with JetStream on the host's loopback only, its store under the staging
    directory and a fresh password of its own (in a root-only file, given on stdin); the password.
    Whatever an earlier run left there is removed first."""
    scratch = posixpath.join(staging_dir(target.profile), "scratch")
    port = _scratch_port(target.profile)
    password = Secret("scratch nats password", secrets.token_hex(24))
    config = (
        f'listen: "127.0.0.1:{port}"\\njetstream {{ store_dir: "{scratch}/store" }}\\n'
        f'authorization {{ user: "{SCRATCH_USER}", password: "%s" }}\\n'
    )
    quoted = shlex.quote(scratch)
    output = target.shell.run(
        f"read -r password; systemctl stop {DRILL_UNIT} 2>/dev/null; systemctl reset-failed {DRILL_UNIT} 2>/dev/null; "
        f"if [ -e {quoted} ]; then echo leftover; fi; "
        f"rm -rf {quoted} && install -d -m 700 {quoted} && umask 077 && "
        f'printf {shlex.quote(config)} "$password" > {quoted}/nats.conf && '
        f"systemd-run --unit {DRILL_UNIT} --quiet {PROGRAM_LINK} -c {quoted}/nats.conf && "
        f"for i in $(seq 40); do bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' 2>/dev/null && exit 0; sleep 0.25; "
        "done; exit 1",
        "starting a scratch nats-server on loopback",
        secret=password,
    )
    if "leftover" in output:
        logger.warning(f"{target.node.name}: NATS: removed the scratch store an earlier restore or drill left")
    return password


def _staged(job: RestoreJob, names: list[str]) -> dict:
    """The set restored into a scratch server (left stopped, its store kept for the swap); the
    figures it reported. Every artifact's sha256 has been checked when this returns."""
    password = _start_scratch(job)
    client = Client(job, address="127.0.0.1", port=_scratch_port(job.profile), login=(SCRATCH_USER, password))
    try:
        restore_streams(client, job, names)
        found = _all_figures(client)
    finally:
        client.close()
    job.shell.run(f"systemctl stop {DRILL_UNIT}", "stopping the scratch nats-server")
    return found


def _live_streams_dir(target: ServiceHost) -> str:
    """The live server's directory of the global account's streams (from its /varz)."""
    settings = settings_for(target.profile)
    varz = json.loads(
        target.shell.run(
            f"curl -fsS --max-time 5 {monitor_url(settings, '/varz')}", "reading the NATS server's store directory"
        )
    )
    return posixpath.join(varz["jetstream"]["config"]["store_dir"], "$G", "streams")


def _ready(target: ServiceHost) -> str:
    """Wait up to a minute for the live server's /healthz; `ready` says whether it answered."""
    healthz = monitor_url(settings_for(target.profile), "/healthz")
    return (
        f"ready=no; for i in $(seq 120); do curl -fsS --max-time 2 {healthz} >/dev/null 2>&1 && ready=yes && "
        "break; sleep 0.5; done"
    )


def _rollback_script(target: ServiceHost) -> str:
    """Put back the streams an unfinished swap moved aside, remove those it added (the journal names
    the live directory), clear the staging directory; prints what it did (nothing when there was
    nothing to do). A stream that cannot be put back keeps the journal and the old copies, and the
    script fails saying so."""
    swap = shlex.quote(posixpath.join(staging_dir(target.profile), "swap"))
    root = shlex.quote(staging_dir(target.profile))
    return (
        f"kept=; if [ -s {swap}/live ]; then live=$(cat {swap}/live); systemctl stop {UNIT}; "
        f'for old in {swap}/old/*; do name=${{old##*/}}; [ -d "$old" ] && [ -n "$name" ] || continue; '
        'rm -rf "$live/$name"; if mv "$old" "$live/$name"; then echo "put back $name"; '
        "else kept=yes; fi; done; "
        f'if [ -f {swap}/added ]; then while read -r name; do [ -n "$name" ] || continue; '
        f'rm -rf "$live/$name"; echo "removed $name"; done < {swap}/added; fi; '
        f'if [ -z "$kept" ]; then rm -rf {swap}; fi; systemctl start {UNIT}; {_ready(target)}; fi; '
        f'rm -rf {root}.done; if [ -n "$kept" ]; then echo \'could not put every stream back: the old ones '
        f"wait in {swap}/old' >&2; exit 1; fi; rm -rf {swap}"
    )


def _swap_script(target: ServiceHost, live: str, names: list[str]) -> str:
    """With the live server stopped: each live stream directory moved aside (kept) and the restored one
    renamed into its place, then the server started. A journal says what moved, for the rollback,
    which also runs here when a step fails."""
    root = staging_dir(target.profile)
    swap, scratch = posixpath.join(root, "swap"), posixpath.join(root, "scratch")
    rollback = shlex.quote("set +e; " + _rollback_script(target))
    return (
        f"live={shlex.quote(live)}; swap={shlex.quote(swap)}; "
        f"restored=$(find {shlex.quote(scratch)}/store -type d -path '*/$G/streams' | head -n 1); "
        'test -n "$restored" || exit 1; install -d -m 700 "$swap/old"; : > "$swap/added"; '
        'printf \'%s\\n\' "$live" > "$swap/live"; '
        f'trap {rollback} EXIT; set -e; systemctl stop {UNIT}; install -d -o nats -g nats "$live"; '
        f"for name in {' '.join(names)}; do "
        'if [ -d "$live/$name" ]; then mv "$live/$name" "$swap/old/$name"; '
        'else echo "$name" >> "$swap/added"; fi; '
        'chown -R nats:nats "$restored/$name"; mv "$restored/$name" "$live/$name"; done; '
        f'systemctl start {UNIT}; {_ready(target)}; test "$ready" = yes; trap - EXIT'
    )


def _commit(target: ServiceHost) -> None:
    """The restored streams are proven: the swap journal and the old streams go, in one rename first."""
    root = shlex.quote(staging_dir(target.profile))
    target.shell.run(
        f"rm -rf {root}.done && mv {root} {root}.done && rm -rf {root}.done",
        "removing the streams the restore replaced",
    )


def _recover(target: ServiceHost) -> None:
    """Roll back what a run cut short left (logged), so that the live streams are as they were."""
    done = target.shell.run_detached(SWAP_UNIT, _rollback_script(target), "rolling back an unfinished NATS restore")
    if done.strip():
        logger.warning(
            f"{target.node.name}: NATS: an unfinished restore was rolled back ({'; '.join(done.strip().splitlines())})"
        )


def restore(job: RestoreJob) -> dict:
    """The set's streams restored and proven in a scratch server, then swapped for the live ones (the
    server stopped for the swap); the live streams come back if the server does not then show the
    manifest's figures. Streams not in the set are left alone. The figures found."""
    names = streams_in_set(job)
    _recover(job)
    live = _live_streams_dir(job)
    try:
        staged = _staged(job, names)
        wrong = differences(job.figures, staged)
        if wrong:
            raise RestoreRefused(
                f"{job.node.name}: the restored NATS streams differ from the manifest "
                f"({'; '.join(wrong)}); the live streams were not touched"
            )
        try:
            job.shell.run_detached(SWAP_UNIT, _swap_script(job, live, names), "swapping in the restored NATS streams")
            found = {name: figure for name, figure in figures(job).items() if name in names}
            wrong = differences(job.figures, found)
            if wrong:
                raise HostCommandError(
                    f"{job.node.name}: after the swap NATS showed other figures than the "
                    f"manifest ({'; '.join(wrong)}); the live streams were put back"
                )
        except Exception:
            job.shell.run_detached(SWAP_UNIT, _rollback_script(job), "putting the live NATS streams back")
            raise
        _commit(job)
        return found
    finally:
        _stop_scratch(job)


def drill(job: RestoreJob) -> dict:
    """Restore the streams into the scratch nats-server (loopback only, a password of its own, in the
    restore's staging directory; removed afterwards) and read their figures. The live server is not
    touched."""
    names = streams_in_set(job)
    try:
        return _staged(job, names)
    finally:
        _stop_scratch(job)
