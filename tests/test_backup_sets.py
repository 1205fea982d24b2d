"""Backup sets: ids, signed manifests and retention, without a store."""

from __future__ import annotations

import datetime
import io
import json

import pytest

from gpuaas.backup.sets import (
    Hashing,
    Manifest,
    ObjectEntry,
    SignatureProblem,
    expired,
    key_id,
    new_set_id,
    set_time,
    signed_json,
    verified_manifest,
)
from gpuaas.secrets import Secret

NOW = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.timezone.utc)


def sets(*entries: tuple[int, bool, bool]) -> dict[str, dict]:
    """(days ago, complete, in use) -> the listing `expired` reads."""
    return {
        new_set_id(NOW - datetime.timedelta(days=days)): {"complete": complete, "in_use": in_use, "keys": []}
        for days, complete, in_use in entries
    }


def test_set_ids_sort_by_time_and_read_back():
    older, newer = new_set_id(NOW - datetime.timedelta(hours=1)), new_set_id(NOW)
    assert older < newer and set_time(newer) == NOW


def test_retention_keeps_the_newest_n_complete_sets():
    listing = sets((5, True, False), (4, True, False), (3, True, False), (2, True, False), (1, True, False))
    by_age = sorted(listing)
    assert expired(listing, keep_last=3, keep_days=None, now=NOW) == by_age[:2]


def test_retention_by_days_keeps_younger_sets_too():
    listing = sets((10, True, False), (6, True, False), (2, True, False), (1, True, False))
    assert expired(listing, keep_last=1, keep_days=7, now=NOW) == sorted(listing)[:1]


def test_retention_never_removes_the_newest_complete_set_or_one_being_restored():
    listing = sets((9, True, True), (8, True, False), (1, False, False))
    doomed = expired(listing, keep_last=1, keep_days=None, now=NOW, another_run_live=True)
    oldest, newest_complete, running = sorted(listing)
    assert oldest not in doomed  # a restore is reading it
    assert newest_complete not in doomed
    assert running not in doomed  # incomplete while another run is live: it may be that run's


def test_incomplete_sets_expire_only_when_no_other_run_is_live():
    listing = sets((3, False, False), (2, True, False), (1, False, False))
    failed, complete, latest = sorted(listing)
    assert expired(listing, keep_last=5, keep_days=None, now=NOW, another_run_live=True) == []
    # Retention holds the lease: every incomplete set, older or newer than the complete ones, is a dead run.
    assert expired(listing, keep_last=5, keep_days=None, now=NOW) == [failed, latest]


def test_retention_never_removes_a_set_a_live_run_names():
    listing = sets((9, True, False), (8, True, False), (1, True, False))
    oldest, second, _ = sorted(listing)
    assert expired(listing, keep_last=1, keep_days=None, now=NOW, busy={oldest}) == [second]


def test_a_signed_manifest_verifies_and_every_change_or_other_key_is_told_apart():
    key, other = Secret("backup_manifest_key", "a" * 48), Secret("other", "b" * 48)
    manifest = Manifest(
        "local",
        new_set_id(NOW),
        "abc123",
        "start",
        services={"local-server/postgres": {"version": "15", "figures": {"platform": {"public.t": 3}}}},
    )
    body = signed_json(manifest, key).encode()
    assert verified_manifest(body, key) == manifest
    assert key_id(key) != key_id(other) and key.reveal() not in body.decode()
    with pytest.raises(SignatureProblem, match="signed with another key") as problem:
        verified_manifest(body, other)
    assert problem.value.kind == "other key"
    data = json.loads(body)
    data["services"]["local-server/postgres"]["figures"]["intruder"] = {}
    with pytest.raises(SignatureProblem, match="changed after it was signed"):
        verified_manifest(json.dumps(data).encode(), key)
    with pytest.raises(SignatureProblem, match="carries no signature") as problem:
        verified_manifest(manifest.to_json().encode(), key)
    assert problem.value.kind == "unsigned"
    with pytest.raises(SignatureProblem, match="not JSON"):
        verified_manifest(b"\x00not json", key)
    # Whitespace and key order are not part of what is signed: the canonical bytes are.
    assert verified_manifest(json.dumps(json.loads(body)).encode(), key) == manifest


def test_manifest_round_trip_and_hashing_reader():
    reader = Hashing(io.BytesIO(b"x" * 3_000_000))
    while reader.read(1 << 20):
        pass
    manifest = Manifest(
        "local",
        new_set_id(NOW),
        "abc123",
        "start",
        objects=[ObjectEntry("local/s/postgres.dump", reader.size, reader.digest.hexdigest())],
    )
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert manifest.objects[0].size == 3_000_000
