"""Backup and restore of roles/openbao: a raft snapshot (`/v1/sys/storage/raft/snapshot`) taken
with the host's root token (from the init secret, handed to curl on stdin); restored with
`snapshot-force`, so a snapshot of an earlier install of the storage is accepted too."""

from __future__ import annotations

import json

from gpuaas.backup.service import BackupJob, RestoreJob, ServiceHost
from gpuaas.backup.transport import copy_stream
from gpuaas.errors import SecretError
from gpuaas.profile import Profile
from gpuaas.secrets import Secret, resolve
from roles.openbao.config import CA_CERT, TLS_CERT, api_url, settings_for

SERVICE = "openbao"
DEPENDANTS: tuple[str, ...] = ()
ARTIFACT = "raft.snap"


def applies(profile: Profile) -> bool:
    return True


def _token(target: ServiceHost) -> Secret:
    settings = settings_for(target.profile)
    try:
        token = json.loads(resolve(target.profile, settings.init_secret).reveal())[target.node.name]["root_token"]
    except (ValueError, KeyError, TypeError):
        raise SecretError(f"secret '{settings.init_secret}' holds no root token for {target.node.name}") from None
    return Secret(f"{settings.init_secret}.root_token", token)


def _curl(target: ServiceHost, arguments: str, path: str) -> str:
    """curl against the host's own API; the token line on stdin becomes the X-Vault-Token header."""
    settings = settings_for(target.profile)
    ca = CA_CERT if settings.tls_cert is None else TLS_CERT
    return (f"read -r token; exec 4<&0; printf 'X-Vault-Token: %s\\n' \"$token\" | curl -sS --fail-with-body "
            f"--cacert {ca} -H @- {arguments} {api_url(settings, target.node)}{path}")  # fmt: skip


def _status(target: ServiceHost) -> dict:
    settings = settings_for(target.profile)
    ca = CA_CERT if settings.tls_cert is None else TLS_CERT
    text = target.shell.run(f"curl -sS --fail --cacert {ca} {api_url(settings, target.node)}/v1/sys/seal-status",
                            "reading the OpenBao seal status")  # fmt: skip
    return json.loads(text)


def figures(target: ServiceHost) -> dict:
    """{"initialized": ..., "sealed": ...}: a restored server must be initialised and unsealed."""
    status = _status(target)
    return {"initialized": status["initialized"], "sealed": status["sealed"]}


def back_up(job: BackupJob) -> None:
    counted = figures(job)
    command = _curl(job, "", "/v1/sys/storage/raft/snapshot")
    with job.shell.reader(command, "the OpenBao raft snapshot", secret=_token(job)) as stream:
        job.upload(ARTIFACT, stream)
    job.record(_status(job)["version"], counted)


def restore(job: RestoreJob) -> None:
    """The snapshot replaces the raft state in place (the server keeps running); it is read from the
    bucket straight into curl's request body."""
    command = _curl(job, "-X POST -T /dev/fd/4", "/v1/sys/storage/raft/snapshot-force")
    with job.open(ARTIFACT) as snapshot, job.shell.writer(command, "the OpenBao raft snapshot restore",
                                                         secret=_token(job)) as target:  # fmt: skip
        copy_stream(snapshot, target)
    # The server applies the snapshot asynchronously; the figures are read once it answers unsealed.
    job.shell.run(_wait_unsealed(job), "waiting for OpenBao after the restore")


def _wait_unsealed(target: ServiceHost) -> str:
    settings = settings_for(target.profile)
    ca = CA_CERT if settings.tls_cert is None else TLS_CERT
    url = f"{api_url(settings, target.node)}/v1/sys/seal-status"
    return f"for i in $(seq 60); do curl -sS --cacert {ca} {url} 2>/dev/null | grep -q '\"sealed\":false' && exit 0; " \
           "sleep 0.5; done; exit 0"  # fmt: skip
