"""Writing and checking one backup set: objects streamed to the bucket while they are hashed, the
manifest last; and the check a restore makes before it touches anything."""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass

from pyinfra.api.exceptions import DeployError

from gpuaas.backup.sets import (
    IN_USE,
    MANIFEST,
    Hashing,
    Manifest,
    ObjectEntry,
    SignatureProblem,
    SigningKey,
    new_set_id,
    prefix,
    signed_json,
    verified_manifest,
)


class BackupSetError(DeployError):
    """A set that cannot be written or trusted; the message names the set and the object."""


@dataclass(frozen=True)
class ManifestKey:
    """The key manifests of one environment are signed with, and the profile field that names it (for
    messages: the value is never shown)."""

    secret: SigningKey
    #: `backup.manifest_key`, or `backup.trusted_manifest_keys.prod` for another environment's sets.
    field: str
    #: Whose key it is, as a refusal says it: "this environment's", "prod's".
    owner: str = "this environment's"


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class SetWriter:
    """One backup set being written. Nothing is restorable until `finish` writes the manifest."""

    def __init__(
        self, s3, bucket: str, environment: str, source_sha: str, key: ManifestKey, transfer=None, label: str = ""
    ):
        self.s3, self.bucket, self.transfer, self.key = s3, bucket, transfer, key
        self.manifest = Manifest(
            environment=environment, set_id=new_set_id(label=label), source_sha=source_sha, started=utc_now()
        )

    @property
    def prefix(self) -> str:
        return prefix(self.manifest.environment, self.manifest.set_id)

    def upload(self, name: str, stream) -> ObjectEntry:
        """Stream `stream` (a file-like object) to NAME in the set: multipart, never whole in memory."""
        key = self.prefix + name
        reader = Hashing(stream)
        extra = {"Config": self.transfer} if self.transfer is not None else {}
        try:
            self.s3.upload_fileobj(reader, self.bucket, key, **extra)
        except Exception as error:  # boto3 raises several families; all mean the same here
            raise BackupSetError(
                f"backup set {self.prefix}: uploading {name} failed ({error}); the set stays "
                "incomplete (no manifest) and is never offered for a restore"
            ) from None
        entry = ObjectEntry(key=key, size=reader.size, sha256=reader.digest.hexdigest())
        self.manifest.objects.append(entry)
        return entry

    def record(self, service: str, version: str, figures: dict) -> None:
        """What a restore of `service` must find again (row counts, key counts, ...)."""
        self.manifest.services[service] = {"version": version, "figures": figures}

    def finish(self) -> Manifest:
        """Write the manifest, signed with the environment's manifest key, last: from now on the set is
        complete."""
        self.manifest.ended = utc_now()
        body = signed_json(self.manifest, self.key.secret).encode()
        self.s3.put_object(Bucket=self.bucket, Key=self.prefix + MANIFEST, Body=body)
        return self.manifest


def read_manifest(s3, bucket: str, environment: str, set_id: str, key: ManifestKey) -> Manifest:
    """The manifest of ENVIRONMENT/SET_ID once its signature verifies with `key` and it names the set it
    lies in; BackupSetError saying why not (nothing of an unverified manifest is used)."""
    try:
        body = s3.get_object(Bucket=bucket, Key=prefix(environment, set_id) + MANIFEST)["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise BackupSetError(f"backup set {environment}/{set_id} has no manifest: it is incomplete") from None
    except Exception as error:  # connection, credentials, a store that is not ready
        raise BackupSetError(f"the manifest of backup set {environment}/{set_id} cannot be read: {error}") from None
    where = f"backup set {environment}/{set_id}"
    try:
        manifest = verified_manifest(body, key.secret)
    except SignatureProblem as problem:
        if problem.kind == "unsigned":
            raise BackupSetError(
                f"{where}: its manifest is unsigned ({problem}): it was written before manifests "
                f"were signed, or not by a backup run; a restore trusts only manifests signed with "
                f"{key.owner} manifest key ({key.field}); nothing was changed"
            ) from None
        raise BackupSetError(
            f"{where}: its manifest is not signed with {key.owner} manifest key ({key.field}): "
            f"{problem}; nothing was changed"
        ) from None
    if (manifest.environment, manifest.set_id) != (environment, set_id):
        raise BackupSetError(
            f"{where}: its manifest is signed but describes set {manifest.environment}/"
            f"{manifest.set_id}, copied here from elsewhere; nothing was changed"
        )
    return manifest


def verify(s3, bucket: str, manifest: Manifest) -> None:
    """Every object of the set is there with its size and sha256 (read in chunks), or BackupSetError
    naming the first that is not: a restore calls this before it touches any service."""
    for entry in manifest.objects:
        try:
            body = s3.get_object(Bucket=bucket, Key=entry.key)["Body"]
        except Exception:
            raise BackupSetError(
                f"backup set {manifest.set_id}: {entry.key} is missing; nothing was restored"
            ) from None
        digest, size = hashlib.sha256(), 0
        while chunk := body.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
        if (size, digest.hexdigest()) != (entry.size, entry.sha256):
            raise BackupSetError(
                f"backup set {manifest.set_id}: {entry.key} has sha256 {digest.hexdigest()} "
                f"({size} bytes), the manifest says {entry.sha256} ({entry.size} bytes); "
                "nothing was restored"
            )


def mark_in_use(s3, bucket: str, manifest: Manifest, marker: bytes | None) -> None:
    """While a restore reads a set, a marker keeps retention away from it; `marker` (the body naming the
    run's lease, gpuaas.backup.lease) puts it there, None removes it."""
    key = prefix(manifest.environment, manifest.set_id) + IN_USE
    if marker is not None:
        s3.put_object(Bucket=bucket, Key=key, Body=marker)
    else:
        s3.delete_object(Bucket=bucket, Key=key)


def remove_sets(s3, bucket: str, keys_by_set: dict[str, list[str]]) -> int:
    """Delete the sets' objects (the manifest first, so a half-deleted set is never taken for complete)."""
    removed = 0
    for keys in keys_by_set.values():
        ordered = sorted(keys, key=lambda key: not key.endswith("/" + MANIFEST))
        for start in range(0, len(ordered), 1000):
            batch = ordered[start : start + 1000]
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True})
            removed += len(batch)
    return removed
