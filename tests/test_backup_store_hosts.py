"""Backup sets in the real SeaweedFS S3 of the local lane, through boto3 as the backup deploy uses it."""

from __future__ import annotations

import io
import os

import pytest

from gpuaas.backup import store
from gpuaas.backup.engine import manifest_key
from gpuaas.backup.sets import complete_sets, expired, list_sets
from gpuaas.backup.writer import BackupSetError, SetWriter, read_manifest, remove_sets, verify
from tests.local_variant import converge

pytestmark = pytest.mark.hosts


@pytest.fixture(scope="module")
def s3(local_hosts):
    from gpuaas.profile import REPO_ROOT

    converge(REPO_ROOT / "inventories" / "local.py")
    environment = f"test-{os.getpid()}"
    client = store.client(local_hosts)
    yield client, local_hosts.backup.bucket, environment
    keys = [
        key for entry in list_sets(client, local_hosts.backup.bucket, environment).values() for key in entry["keys"]
    ]
    if keys:
        remove_sets(client, local_hosts.backup.bucket, {"all": keys})


def test_a_set_is_restorable_only_once_its_manifest_is_written(s3, local_hosts):
    client, bucket, environment = s3
    small = local_hosts.backup.model_copy(update={"part_size_mb": 5})
    smallest_parts = local_hosts.model_copy(update={"backup": small})
    writer = SetWriter(
        client, bucket, environment, "abc123", manifest_key(local_hosts), store.transfer_config(smallest_parts)
    )
    payload = os.urandom(12 * 1024 * 1024 + 17)  # three multipart parts of 5 MiB, the smallest S3 allows
    entry = writer.upload("postgres/platform.dump", io.BytesIO(payload))
    assert writer.manifest.set_id not in complete_sets(client, bucket, environment)
    writer.record("postgres", "15.8", {"platform": {"tenants": 3}})
    writer.finish()
    assert writer.manifest.set_id in complete_sets(client, bucket, environment)
    manifest = read_manifest(client, bucket, environment, writer.manifest.set_id, manifest_key(local_hosts))
    assert manifest.objects == [entry] and entry.size == len(payload)
    verify(client, bucket, manifest)
    assert client.get_object(Bucket=bucket, Key=entry.key)["Body"].read() == payload


def test_a_tampered_or_missing_object_is_refused_with_its_name(s3, local_hosts):
    client, bucket, environment = s3
    writer = SetWriter(client, bucket, environment, "abc123", manifest_key(local_hosts))
    entry = writer.upload("redis/dump.rdb", io.BytesIO(b"REDIS0011 known data"))
    manifest = writer.finish()
    client.put_object(Bucket=bucket, Key=entry.key, Body=b"REDIS0011 other data")
    with pytest.raises(BackupSetError, match="redis/dump.rdb has sha256 .* the manifest says"):
        verify(client, bucket, manifest)
    client.delete_object(Bucket=bucket, Key=entry.key)
    with pytest.raises(BackupSetError, match="redis/dump.rdb is missing; nothing was restored"):
        verify(client, bucket, manifest)


def test_an_interrupted_set_is_never_listed_and_retention_clears_it(s3, local_hosts):
    client, bucket, environment = s3
    broken = SetWriter(client, bucket, environment, "abc123", manifest_key(local_hosts))
    broken.upload("nats/stream.tar", io.BytesIO(b"partial"))  # the run stops here: no manifest
    later = SetWriter(client, bucket, environment, "abc123", manifest_key(local_hosts))
    later.upload("nats/stream.tar", io.BytesIO(b"whole"))
    later.finish()
    assert broken.manifest.set_id not in complete_sets(client, bucket, environment)
    with pytest.raises(BackupSetError, match="has no manifest: it is incomplete"):
        read_manifest(client, bucket, environment, broken.manifest.set_id, manifest_key(local_hosts))
    import datetime

    listing = list_sets(client, bucket, environment)
    doomed = expired(listing, keep_last=10, keep_days=None, now=datetime.datetime.now(datetime.timezone.utc))
    assert broken.manifest.set_id in doomed and later.manifest.set_id not in doomed
    remove_sets(client, bucket, {set_id: listing[set_id]["keys"] for set_id in doomed})
    assert broken.manifest.set_id not in list_sets(client, bucket, environment)
    assert later.manifest.set_id in complete_sets(client, bucket, environment)
