"""The demo baseline's NATS part: JetStream streams. The loader creates the baseline's streams and
publishes their seed messages (each acknowledged); a capture keeps every stream as the server's own
snapshot (consumers included, through roles/nats's snapshot client); a reset deletes the live streams and
restores the captured ones, sequence numbers and all."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO

from gpuaas.backup.transport import HostCommandError
from roles.demo.baseline import Stream
from roles.demo.snapshots import HostSnapshots
from roles.nats.backup import CHUNK, TIMEOUT, Client, Snapshot, restore_streams, stream_names

PREFIX = "nats/"


def delete_all(client: Client) -> list[str]:
    """Every stream deleted, with its messages and consumers; the names deleted."""
    names = stream_names(client)
    for name in names:
        client.api(f"STREAM.DELETE.{name}")
    return names


def load(client: Client, streams: list[Stream]) -> None:
    """Exactly the baseline's streams, each with its seed messages in order (each one acknowledged)."""
    delete_all(client)
    for stream in streams:
        config = {"name": stream.name, "subjects": list(stream.subjects), "storage": "file", "num_replicas": 1}
        client.api(f"STREAM.CREATE.{stream.name}", config)
        for message in stream.messages:
            reply = client.call(client.connection.request(message.subject, message.data.encode(), timeout=TIMEOUT))
            ack = json.loads(reply.data or b"{}")
            if ack.get("stream") != stream.name:
                raise HostCommandError(
                    f"{client.node}: NATS: a seed message on {message.subject} was not stored in {stream.name}"
                )


def capture(client: Client, snapshots: HostSnapshots) -> list[str]:
    """Each stream's configuration and snapshot written beside the other snapshots; the stream names."""
    names = stream_names(client)
    for name in names:
        snapshot = Snapshot(client, name)
        with snapshot:
            snapshots.write(f"{PREFIX}{name}.snapshot", io.BufferedReader(snapshot, CHUNK))
        meta = {"config": snapshot.answer["config"], "state": snapshot.answer["state"]}
        snapshots.write(f"{PREFIX}{name}.json", io.BytesIO(json.dumps(meta, sort_keys=True).encode()))
    return sorted(names)


@dataclass
class _FromSnapshots:
    """What roles/nats's restore reads: artifacts opened by name (here from the host's snapshots)."""

    node: object
    open: Callable[[str], AbstractContextManager[IO[bytes]]]


def reset(client: Client, snapshots: HostSnapshots, index: dict, names: list[str]) -> None:
    """The live streams deleted and the captured ones restored (each snapshot checked against its sha256)."""
    delete_all(client)
    job = _FromSnapshots(snapshots.target.node, lambda name: snapshots.open(PREFIX + name, index))
    restore_streams(client, job, names)


def _message(client: Client, stream: str, sequence: int) -> dict | None:
    try:
        return client.api(f"STREAM.MSG.GET.{stream}", {"seq": sequence})["message"]
    except HostCommandError:
        return None  # deleted from the stream: no message at that sequence


def checksums(client: Client) -> dict[str, str]:
    """{stream: "MESSAGES SHA256"} over its subjects and every message's sequence, subject, headers and
    data (not the times they were stored)."""
    found = {}
    for name in sorted(stream_names(client)):
        info = client.api(f"STREAM.INFO.{name}")
        state, digest = info["state"], hashlib.sha256()
        digest.update(json.dumps(sorted(info["config"].get("subjects") or [])).encode())
        for sequence in range(state.get("first_seq", 0), state.get("last_seq", 0) + 1):
            message = _message(client, name, sequence) if sequence else None
            if message is not None:
                parts = [message["seq"], message["subject"], message.get("hdrs", ""), message.get("data", "")]
                digest.update(json.dumps(parts).encode() + b"\n")
        found[name] = f"{state.get('messages', 0)} {digest.hexdigest()}"
    return found
