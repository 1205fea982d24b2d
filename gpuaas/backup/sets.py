"""Backup sets: one run's objects under `<env>/<set id>/`, complete only once its manifest (written
last) is there. Listing, choosing and expiring sets."""

from __future__ import annotations

import datetime
import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field

MANIFEST = "manifest.json"
#: A restore that reads a set marks it with this object, so retention leaves the set alone meanwhile.
IN_USE = "restore-in-progress"
#: Microseconds included: sets started within the same second still sort in the order they started.
ID_FORMAT = "%Y%m%dT%H%M%S%fZ"


def new_set_id(now: datetime.datetime | None = None) -> str:
    """`20261123T191500123456Z-3f9a1c`: sortable by time, unique across concurrent runs."""
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    return f"{moment.strftime(ID_FORMAT)}-{secrets.token_hex(3)}"


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


def expired(sets: dict[str, dict], keep_last: int, keep_days: int | None, now: datetime.datetime) -> list[str]:
    """The sets retention removes: complete sets beyond the newest `keep_last` and older than `keep_days`
    (when given), and incomplete sets older than the newest complete one. Never the newest complete
    set, never a set a restore is reading."""
    complete = sorted((s for s, e in sets.items() if e["complete"]), reverse=True)
    kept = set(complete[:keep_last])
    if keep_days is not None:
        kept |= {s for s in complete if now - set_time(s) < datetime.timedelta(days=keep_days)}
    newest = complete[0] if complete else None
    doomed = [s for s in complete if s not in kept and s != newest]
    # An incomplete set older than the newest complete one is a run that failed; a newer one may still run.
    doomed += [s for s, e in sets.items() if not e["complete"] and newest is not None and s < newest]
    return sorted(s for s in doomed if not sets[s]["in_use"])
