"""Backup sets: ids, manifests and retention, without a store."""

from __future__ import annotations

import datetime
import io

from gpuaas.backup.sets import Hashing, Manifest, ObjectEntry, expired, new_set_id, set_time

NOW = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.timezone.utc)


def sets(*entries: tuple[int, bool, bool]) -> dict[str, dict]:
    """(days ago, complete, in use) -> the listing `expired` reads."""
    return {new_set_id(NOW - datetime.timedelta(days=days)): {"complete": complete, "in_use": in_use, "keys": []}
            for days, complete, in_use in entries}  # fmt: skip


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
    doomed = expired(listing, keep_last=1, keep_days=None, now=NOW)
    oldest, newest_complete, running = sorted(listing)
    assert oldest not in doomed  # a restore is reading it
    assert newest_complete not in doomed
    assert running not in doomed  # incomplete but newer than every complete set: it may still be running


def test_a_failed_incomplete_set_older_than_a_complete_one_expires():
    listing = sets((3, False, False), (1, True, False))
    assert expired(listing, keep_last=5, keep_days=None, now=NOW) == sorted(listing)[:1]


def test_manifest_round_trip_and_hashing_reader():
    reader = Hashing(io.BytesIO(b"x" * 3_000_000))
    while reader.read(1 << 20):
        pass
    manifest = Manifest("local", new_set_id(NOW), "abc123", "start", objects=[
        ObjectEntry("local/s/postgres.dump", reader.size, reader.digest.hexdigest())])  # fmt: skip
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert manifest.objects[0].size == 3_000_000
