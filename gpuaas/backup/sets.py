"""Backup sets: one run's objects under `<env>/<set id>/`, complete only once its manifest (written
last) is there. Listing, choosing and expiring sets.

A manifest is signed: its `signature` entry holds an HMAC-SHA256, with the environment's manifest key
(`backup.manifest_key`), of the manifest's canonical bytes (the JSON of every other entry, keys
sorted, no spaces, ASCII), and the key's id (an HMAC of a fixed text with the same key, so that a
refusal can tell "another key" from "altered" without showing anything of the key). Anyone who can
write to the bucket can write a manifest; only a holder of the key can write one a restore accepts."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Protocol

MANIFEST = "manifest.json"
#: A restore that reads a set marks it with this object, so retention leaves the set alone meanwhile.
IN_USE = "restore-in-progress"
#: The run that holds this object in `<env>/` is the only backup, restore, drill or retention run of the
#: environment (gpuaas.backup.lease).
LEASE = "lease.json"
SIGNATURE_ALGORITHM = "HMAC-SHA256"
_KEY_ID_TEXT = b"gpuaas backup manifest key id"
#: Microseconds included: sets started within the same second still sort in the order they started.
ID_FORMAT = "%Y%m%dT%H%M%S%fZ"


#: The label of the sets a demo capture writes (`...-3f9a1c-baseline`): retention never removes them.
BASELINE = "baseline"


def new_set_id(now: datetime.datetime | None = None, label: str = "") -> str:
    """`20261123T191500123456Z-3f9a1c`: sortable by time, unique across concurrent runs; a label is
    appended (`-baseline`)."""
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    return f"{moment.strftime(ID_FORMAT)}-{secrets.token_hex(3)}" + (f"-{label}" if label else "")


def set_label(set_id: str) -> str:
    """The label a set id carries ("" for an ordinary set)."""
    parts = set_id.split("-")
    return parts[2] if len(parts) > 2 else ""


def set_time(set_id: str) -> datetime.datetime:
    return datetime.datetime.strptime(set_id.split("-")[0], ID_FORMAT).replace(tzinfo=datetime.timezone.utc)


@dataclass
class ObjectEntry:
    key: str
    size: int
    sha256: str


@dataclass
class Manifest:
    """What a set holds and where it came from; `figures` are what a restore verifies against."""

    environment: str
    set_id: str
    source_sha: str
    started: str
    ended: str = ""
    #: "age" when every object was encrypted with age before upload; "" when stored as is.
    encryption: str = ""
    services: dict[str, dict] = field(default_factory=dict)  # name -> {"version": ..., "figures": {...}}
    objects: list[ObjectEntry] = field(default_factory=list)
    #: RKE2's own etcd snapshots in the bucket when the set was made, newest first ({key, size, modified}).
    etcd_snapshots: list[dict] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        data["objects"] = [ObjectEntry(**entry) for entry in data.get("objects", [])]
        return cls(**data)


class SigningKey(Protocol):
    """A secret (gpuaas.secrets.Secret): its value is read only to compute a MAC."""

    def reveal(self) -> str: ...


def canonical(data: dict) -> bytes:
    """The bytes a manifest's signature covers: its entries, keys sorted, no spaces, ASCII."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _mac(key: SigningKey, message: bytes) -> str:
    return hmac.new(key.reveal().encode(), message, hashlib.sha256).hexdigest()


def key_id(key: SigningKey) -> str:
    """A short id of the key that says which key signed, and reveals nothing of it."""
    return _mac(key, _KEY_ID_TEXT)[:16]


def signed_json(manifest: Manifest, key: SigningKey) -> str:
    """The manifest as stored: its entries and a `signature` over their canonical bytes."""
    data = asdict(manifest)
    signature = {"algorithm": SIGNATURE_ALGORITHM, "key_id": key_id(key), "mac": _mac(key, canonical(data))}
    return json.dumps({**data, "signature": signature}, indent=2, sort_keys=True) + "\n"


class SignatureProblem(ValueError):
    """Why a manifest's signature does not verify (`unsigned`, `other key`, `altered`), in words."""

    def __init__(self, kind: str, text: str):
        super().__init__(text)
        self.kind = kind


def verified_manifest(body: bytes, key: SigningKey) -> Manifest:
    """The manifest in `body` once its signature verifies with `key`; SignatureProblem otherwise.
    Nothing of the manifest is interpreted before its signature has been checked."""
    try:
        data = json.loads(body.decode())
    except ValueError:
        raise SignatureProblem("unsigned", "it is not JSON") from None
    signature = data.pop("signature", None) if isinstance(data, dict) else None
    if not isinstance(signature, dict) or not isinstance(signature.get("mac"), str):
        raise SignatureProblem("unsigned", "it carries no signature")
    if signature.get("algorithm") != SIGNATURE_ALGORITHM:
        raise SignatureProblem("unsigned", f"its signature is not {SIGNATURE_ALGORITHM}")
    if not hmac.compare_digest(signature["mac"].encode(), _mac(key, canonical(data)).encode()):
        claimed = signature.get("key_id")
        if claimed != key_id(key):
            # The id comes from the bucket: shown only when it has the form of one.
            shown = claimed if isinstance(claimed, str) and re.fullmatch(r"[0-9a-f]{16}", claimed) else "unknown"
            raise SignatureProblem(
                "other key", f"it was signed with another key (id {shown}; this key's id is {key_id(key)})"
            )
        raise SignatureProblem("altered", "its content was changed after it was signed")
    try:
        return Manifest.from_json(json.dumps(data))
    except (TypeError, KeyError, ValueError):
        # Signed by a holder of the key, yet not a manifest this version reads.
        raise SignatureProblem("unreadable", "it verifies but is not a manifest this version can read") from None


class Hashing:
    """A file-like reader that counts and hashes what passes through it (for streaming uploads)."""

    def __init__(self, source):
        self.source, self.size, self.digest = source, 0, hashlib.sha256()

    def read(self, amount: int = -1) -> bytes:
        chunk = self.source.read(amount)
        self.size += len(chunk)
        self.digest.update(chunk)
        return chunk


def prefix(environment: str, set_id: str) -> str:
    return f"{environment}/{set_id}/"


def list_sets(s3, bucket: str, environment: str) -> dict[str, dict]:
    """Set id -> {"complete": bool, "in_use": bool, "keys": [...]} for every set of the environment."""
    found: dict[str, dict] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{environment}/"):
        for item in page.get("Contents", []):
            parts = item["Key"].split("/", 2)
            if len(parts) < 3:
                continue
            entry = found.setdefault(parts[1], {"complete": False, "in_use": False, "keys": []})
            entry["keys"].append(item["Key"])
            entry["complete"] |= parts[2] == MANIFEST
            entry["in_use"] |= parts[2] == IN_USE
    return found


def complete_sets(s3, bucket: str, environment: str) -> list[str]:
    """The restorable sets, oldest first: those whose manifest was written."""
    return sorted(set_id for set_id, entry in list_sets(s3, bucket, environment).items() if entry["complete"])


def expired(
    sets: dict[str, dict],
    keep_last: int,
    keep_days: int | None,
    now: datetime.datetime,
    another_run_live: bool = False,
    busy: Collection[str] = (),
) -> list[str]:
    """The sets retention removes: complete sets beyond the newest `keep_last` and older than `keep_days`
    (when given), and the incomplete sets when no other run is live (retention holds the environment's
    lease: every incomplete set is then a run that died). Never the newest complete set, never a set a
    restore is reading, never one a live run names (`busy`), never a baseline set (a demo capture's)."""
    complete = sorted((s for s, e in sets.items() if e["complete"]), reverse=True)
    kept = set(complete[:keep_last]) | {s for s in complete if set_label(s) == BASELINE}
    if keep_days is not None:
        kept |= {s for s in complete if now - set_time(s) < datetime.timedelta(days=keep_days)}
    newest = complete[0] if complete else None
    doomed = [s for s in complete if s not in kept and s != newest]
    if not another_run_live:
        doomed += [s for s, e in sets.items() if not e["complete"]]
    return sorted(s for s in doomed if not sets[s]["in_use"] and s not in busy)
