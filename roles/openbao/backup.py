"""Backup and restore of roles/openbao: a raft snapshot (`/v1/sys/storage/raft/snapshot`) taken
with the host's root token (from the init secret, handed to curl on stdin); restored with
`snapshot-force`, so a snapshot of an earlier install of the storage is accepted too."""

from __future__ import annotations

import json

from gpuaas.backup.service import BackupJob, RestoreJob, ServiceHost
from gpuaas.backup.transport import copy_stream
from gpuaas.profile import Profile
from gpuaas.secrets import Secret
from roles.openbao.config import PROGRAM_LINK, api_url, settings_for, trusted_ca
from roles.openbao.operations import root_token, unseal_keys

SERVICE = "openbao"
DEPENDANTS: tuple[str, ...] = ()
ARTIFACT = "raft.snap"


def applies(profile: Profile) -> bool:
    return True


def _token(target: ServiceHost) -> Secret:
    return root_token(target.profile, target.node, settings_for(target.profile))


def _curl(target: ServiceHost, arguments: str, path: str) -> str:
    """curl against the host's own API; the token line on stdin becomes the X-Vault-Token header."""
    settings = settings_for(target.profile)
    return (f"read -r token; exec 4<&0; printf 'X-Vault-Token: %s\\n' \"$token\" | curl -sS --fail-with-body "
            f"--cacert {trusted_ca(settings)} -H @- {arguments} {api_url(settings, target.node)}{path}")  # fmt: skip


def _seal_status_url(target: ServiceHost) -> str:
    return f"{api_url(settings_for(target.profile), target.node)}/v1/sys/seal-status"


def _status(target: ServiceHost) -> dict:
    ca = trusted_ca(settings_for(target.profile))
    text = target.shell.run(f"curl -sS --fail --cacert {ca} {_seal_status_url(target)}",
                            "reading the OpenBao seal status")  # fmt: skip
    return json.loads(text)


def _figures(status: dict) -> dict:
    """{"initialized": ..., "sealed": ...}: a restored server must be initialised and unsealed."""
    return {"initialized": status["initialized"], "sealed": status["sealed"]}


def figures(target: ServiceHost) -> dict:
    return _figures(_status(target))


def back_up(job: BackupJob) -> None:
    status = _status(job)
    command = _curl(job, "", "/v1/sys/storage/raft/snapshot")
    with job.shell.reader(command, "the OpenBao raft snapshot", secret=_token(job)) as stream:
        job.upload(ARTIFACT, stream)
    job.record(status["version"], _figures(status))


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
    ca, url = trusted_ca(settings_for(target.profile)), _seal_status_url(target)
    return f"for i in $(seq 60); do curl -sS --cacert {ca} {url} 2>/dev/null | grep -q '\"sealed\":false' && exit 0; " \
           "sleep 0.5; done; exit 0"  # fmt: skip


#: The scratch server of a restore drill listens on loopback this far above the API port.
DRILL_PORT_OFFSET = 10000
DRILL_UNIT = "gpuaas-openbao-drill"
DRILL_DIR = "/var/tmp/gpuaas-openbao-drill"
_DRILL = """read -r keys; exec 4<&0; set -e
api=http://127.0.0.1:{port}
systemctl stop {unit} 2>/dev/null || true; rm -rf {dir}; install -d -m 700 {dir}/raft
cat > {dir}/drill.hcl <<CONFIG
storage "raft" {{
  path = "{dir}/raft"
  node_id = "drill"
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  tls_disable = true
}}
api_addr = "http://127.0.0.1:{port}"
cluster_addr = "http://127.0.0.1:{cluster_port}"
CONFIG
systemd-run --unit {unit} --quiet {program} server -config={dir}/drill.hcl
for i in $(seq 60); do curl -s $api/v1/sys/seal-status >/dev/null && break; sleep 0.5; done
# The same shares and threshold as the environment's: the seal the snapshot brings must fit the running one.
init=$(curl -sS --fail -X PUT --data '{{"secret_shares":{shares},"secret_threshold":{threshold}}}' $api/v1/sys/init)
field() {{ printf '%s' "$init" | python3 -c "import json, sys; v = json.load(sys.stdin)['$1']; \
print(' '.join(v) if isinstance(v, list) else v)"; }}
token=$(field root_token)
unseal() {{ for k in $1; do printf '{{"key":"%s"}}' "$k" | curl -sS -X PUT --data @- \\
  $api/v1/sys/unseal >/dev/null; done; }}
unseal "$(field keys_base64)"
for i in $(seq 60); do curl -s $api/v1/sys/leader | grep -q '"is_self":true' && break; sleep 0.5; done
printf 'X-Vault-Token: %s\\n' "$token" | curl -sS --fail-with-body -H @- -X POST -T /dev/fd/4 \\
  $api/v1/sys/storage/raft/snapshot-force >/dev/null
# The restored barrier is the snapshot's: only the environment's own unseal keys open it.
for i in $(seq 60); do curl -s $api/v1/sys/seal-status | grep -q '"sealed":true' && break; sleep 0.5; done
unseal "$keys"
curl -sS $api/v1/sys/seal-status
"""


def drill(job: RestoreJob) -> dict:
    """Restore the snapshot into a scratch OpenBao (loopback, its own raft directory, a transient
    systemd unit) and unseal it with the environment's stored keys: proof that snapshot and keys
    together bring the secrets back. The scratch server is removed afterwards."""
    settings = settings_for(job.profile)
    keys = Secret("unseal keys", " ".join(unseal_keys(job.profile, job.node, settings)))
    port = settings.port + DRILL_PORT_OFFSET
    script = _DRILL.format(port=port, cluster_port=port + 1, unit=DRILL_UNIT, dir=DRILL_DIR, program=PROGRAM_LINK,
                           shares=settings.key_shares, threshold=settings.key_threshold)  # fmt: skip
    try:
        with job.open(ARTIFACT) as snapshot:
            status = json.loads(job.shell.feed(script, "the OpenBao drill", snapshot, secret=keys))
    finally:
        job.shell.run(f"systemctl stop {DRILL_UNIT} 2>/dev/null; rm -rf {DRILL_DIR}", "removing the scratch OpenBao")
    return {"initialized": status["initialized"], "sealed": status["sealed"]}
