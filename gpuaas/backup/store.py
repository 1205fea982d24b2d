"""The profile's S3-compatible bucket through boto3, set up so that RustFS, SeaweedFS, MinIO and AWS all
accept it: path-style addressing, checksums only where the API requires them, bounded multipart."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pyinfra.api.exceptions import DeployError

from gpuaas.profile import Profile
from gpuaas.secrets import resolve

MIB = 1024 * 1024


def client(profile: Profile, attempts: int = 5):
    """An S3 client for the backup target (credentials from the profile's secret references); a request
    is tried `attempts` times in all."""
    backup = profile.backup
    config = Config(
        s3={"addressing_style": "path"},
        # Stores other than AWS reject or mis-handle the newer default integrity headers.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": attempts, "mode": "standard"},
        connect_timeout=10,
        read_timeout=120,
    )
    return boto3.client(
        "s3",
        endpoint_url=str(backup.endpoint),
        region_name=backup.region,
        aws_access_key_id=resolve(profile, backup.access_key_id).reveal(),
        aws_secret_access_key=resolve(profile, backup.secret_access_key).reveal(),
        config=config,
    )


def transfer_config(profile: Profile) -> TransferConfig:
    """Multipart uploads in `part_size_mb` parts, at most `max_concurrency` at once. A stream is read
    ahead by at most as many parts as are being sent (boto3 would buffer ten), so memory stays bounded
    by part size x concurrency whatever the size of what is streamed."""
    part = profile.backup.part_size_mb * MIB
    concurrency = profile.backup.max_concurrency
    config = TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=concurrency)
    # s3transfer's own settings, which boto3's constructor does not take.
    config.max_in_memory_upload_chunks = concurrency
    config.max_in_memory_download_chunks = concurrency
    return config


#: S3 error codes, by the profile field that is wrong when the store answers with one.
_FIELDS_BY_CODE = {
    "NoSuchBucket": "backup.bucket",
    "InvalidAccessKeyId": "backup.access_key_id",
    "SignatureDoesNotMatch": "backup.secret_access_key",
    "AccessDenied": "backup.access_key_id",
}


@contextmanager
def reaching(profile: Profile, doing: str) -> Iterator[None]:
    """Turn what boto3 raises while `doing` into a DeployError that names the profile's file, the field
    that is wrong and the store's answer (no traceback)."""
    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        field = _FIELDS_BY_CODE.get(code, "backup.endpoint")
        raise DeployError(
            f"{profile.source}: {field}: the store at {profile.backup.endpoint} answered {code or error} while {doing}"
        ) from None
    except BotoCoreError as error:
        raise DeployError(
            f"{profile.source}: backup.endpoint: {profile.backup.endpoint} cannot be reached while {doing} ({error})"
        ) from None
