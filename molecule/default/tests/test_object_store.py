"""Verify the S3 backup target on the local data host with boto3: put, get, list; wrong keys refused."""

from __future__ import annotations

import hashlib
import os

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from gpuaas.profile import load_profile
from gpuaas.secrets import resolve

PROFILE = load_profile("local")
# Path-style addressing and checksums only when required: what S3-compatible stores accept.
S3_CONFIG = Config(
    s3={"addressing_style": "path"},
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
    retries={"max_attempts": 2},
)


def client(access_key: str, secret_key: str):
    return boto3.client(
        "s3",
        endpoint_url=str(PROFILE.backup.endpoint),
        region_name=PROFILE.backup.region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=S3_CONFIG,
    )


def backup_client():
    return client(
        resolve(PROFILE, PROFILE.backup.access_key_id).reveal(),
        resolve(PROFILE, PROFILE.backup.secret_access_key).reveal(),
    )


def test_backup_bucket_exists():
    assert PROFILE.backup.bucket in [b["Name"] for b in backup_client().list_buckets()["Buckets"]]


def test_put_and_get_the_same_bytes():
    body = os.urandom(3 * 1024 * 1024 + 17)
    s3 = backup_client()
    s3.put_object(Bucket=PROFILE.backup.bucket, Key="verify/object.bin", Body=body)
    fetched = s3.get_object(Bucket=PROFILE.backup.bucket, Key="verify/object.bin")["Body"].read()
    assert hashlib.sha256(fetched).hexdigest() == hashlib.sha256(body).hexdigest()
    s3.delete_object(Bucket=PROFILE.backup.bucket, Key="verify/object.bin")


def test_wrong_keys_are_refused():
    with pytest.raises(ClientError) as refused:
        client(resolve(PROFILE, PROFILE.backup.access_key_id).reveal(), "not-the-secret").list_buckets()
    assert refused.value.response["Error"]["Code"] in ("SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId")
