"""Backup and restore of roles/openbao: a raft snapshot (`/v1/sys/storage/raft/snapshot`) taken
with the host's root token (from the init secret, handed to curl on stdin); restored with
`snapshot-force`, so a snapshot of an earlier install of the storage is accepted too.

What proves a restore is data: just before the snapshot, the backup writes a fresh random value
(the canary) into a KV secret the collection owns and records only its sha256 in the figures; a
restore or drill must read that value back. The canary itself is never printed nor stored anywhere
but in OpenBao.

A restore stages the snapshot on the host (its sha256 checked as it is read), proves it in a scratch
OpenBao on loopback (unsealed with the environment's keys, the canary read back), keeps a snapshot
of the live state, and only then applies it to the live server; if the live server does not then
show the canary, the kept snapshot is applied back."""

from __future__ import annotations

import hashlib
import json
import posixpath
import secrets
import shlex

from pyinfra import logger

from gpuaas.backup.service import BackupJob, RestoreJob, RestoreRefused, ServiceHost, differences
from gpuaas.backup.transport import HostCommandError, copy_stream
from gpuaas.profile import Profile
from gpuaas.secrets import Secret
from roles.openbao.config import PROGRAM_LINK, api_url, settings_for, trusted_ca
from roles.openbao.operations import root_token, unseal_keys

SERVICE = "openbao"
DEPENDANTS: tuple[str, ...] = ()
ARTIFACT = "raft.snap"
#: The KV (version 2) mount and secret of the canary; the collection owns both.
CANARY_MOUNT = "gpuaas-backup"
CANARY_PATH = f"{CANARY_MOUNT}/data/canary"
FIGURES = ("initialized", "sealed", "canary")


def applies(profile: Profile) -> bool:
    return True


def _token(target: ServiceHost) -> Secret:
    return root_token(target.profile, target.node, settings_for(target.profile))


def _keys_and_token(target: ServiceHost) -> Secret:
    """The unseal keys (space-separated) and the root token, as two lines for a script's stdin."""
    settings = settings_for(target.profile)
    keys = " ".join(unseal_keys(target.profile, target.node, settings))
    return Secret("unseal keys and root token", f"{keys}\n{_token(target).reveal()}")


def staging_dir(profile: Profile) -> str:
    """Where a restore or drill stages the snapshot and runs its scratch server (root only)."""
    data_dir = settings_for(profile).data_dir.rstrip("/")
    return data_dir + ".restore"


def _curl(target: ServiceHost, arguments: str, path: str) -> str:
    """curl against the host's own API; the token line on stdin becomes the X-Vault-Token header."""
    settings = settings_for(target.profile)
    return (
        f"read -r token; exec 4<&0; printf 'X-Vault-Token: %s\\n' \"$token\" | curl -sS --fail-with-body "
        f"--cacert {trusted_ca(settings)} -H @- {arguments} {api_url(settings, target.node)}{path}"
    )


def _seal_status_url(target: ServiceHost) -> str:
    return f"{api_url(settings_for(target.profile), target.node)}/v1/sys/seal-status"


def _status(target: ServiceHost) -> dict:
    ca = trusted_ca(settings_for(target.profile))
    text = target.shell.run(
        f"curl -sS --fail --cacert {ca} {_seal_status_url(target)}", "reading the OpenBao seal status"
    )
    return json.loads(text)


#: Shell functions of the scripts below: `hdr` prints the token header (printf is a shell builtin, so
#: the token never becomes an argument), `canary API CURL-OPTIONS...` prints the sha256 of the
#: canary's value (`absent` without one), never the value.
_FUNCTIONS = (
    """hdr() { printf 'X-Vault-Token: %s\\n' "$token"; }
canary() { api=$1; shift; hdr | curl -sS -H @- "$@" "$api/v1/"""
    + CANARY_PATH
    + """" | \\
  python3 -c "import hashlib, json, sys
text = sys.stdin.read()
data = (json.loads(text).get('data') or {}).get('data') or {} if text.strip().startswith('{') else {}
value = data.get('value')
print(hashlib.sha256(value.encode()).hexdigest() if isinstance(value, str) else 'absent')"; }
"""
)


def _live(target: ServiceHost) -> tuple[str, str]:
    """The live API's URL and the curl options that trust its certificate (quoted)."""
    settings = settings_for(target.profile)
    return api_url(settings, target.node), f"--cacert {shlex.quote(trusted_ca(settings))}"


def _canary_digest(target: ServiceHost) -> str:
    api, trust = _live(target)
    script = "read -r token\n" + _FUNCTIONS + f"canary {api} {trust}\n"
    return target.shell.run(script, "reading the OpenBao canary", secret=_token(target)).strip()


def _figures(status: dict, canary: str) -> dict:
    """A restored server must be initialised, unsealed and hold the canary written before the backup."""
    return {"initialized": status["initialized"], "sealed": status["sealed"], "canary": canary}


def figures(target: ServiceHost) -> dict:
    return _figures(_status(target), _canary_digest(target))


_WRITE_CANARY = """read -r token; read -r value
{functions}
api={api}
# The collection's own KV mount, made on first use.
hdr | curl -sS --fail -o /dev/null -H @- {trust} $api/v1/sys/mounts/{mount} 2>/dev/null || \\
  hdr | curl -sS --fail-with-body -o /dev/null -H @- {trust} -X POST \\
    --data '{{"type":"kv","options":{{"version":"2"}},"description":"restore canary of gpuaas backups"}}' \\
    $api/v1/sys/mounts/{mount}
printf '{{"data":{{"value":"%s"}}}}' "$value" | {{ exec 4<&0; hdr | curl -sS --fail-with-body -o /dev/null -H @- \\
  {trust} -X POST --data-binary @/dev/fd/4 $api/v1/{path}; }}
"""


def _write_canary(job: BackupJob) -> str:
    """A fresh random value written into the canary secret; its sha256."""
    value = secrets.token_hex(32)
    api, trust = _live(job)
    script = _WRITE_CANARY.format(functions=_FUNCTIONS, api=api, trust=trust, mount=CANARY_MOUNT, path=CANARY_PATH)
    job.shell.run(
        script,
        "writing the OpenBao restore canary",
        secret=Secret("root token and canary", f"{_token(job).reveal()}\n{value}"),
    )
    return hashlib.sha256(value.encode()).hexdigest()


def back_up(job: BackupJob) -> None:
    """The canary written, then the raft snapshot streamed: the snapshot holds that canary."""
    status = _status(job)
    canary = _write_canary(job)
    command = _curl(job, "", "/v1/sys/storage/raft/snapshot")
    with job.shell.reader(command, "the OpenBao raft snapshot", secret=_token(job)) as stream:
        job.upload(ARTIFACT, stream)
    job.record(status["version"], _figures(status, canary))


def _refuse_unknown(job: RestoreJob) -> None:
    """The set must hold exactly this role's artifact and figures."""
    odd = [name for name in job.names if name != ARTIFACT] + [str(key) for key in job.figures if key not in FIGURES]
    if odd or ARTIFACT not in job.names:
        raise RestoreRefused(
            f"{job.node.name}: OpenBao restore refused (nothing was changed): the set holds "
            f"{', '.join(odd) or f'no {ARTIFACT}'}; this role restores {ARTIFACT} with the "
            f"figures {', '.join(FIGURES)}"
        )


def _expected(job: RestoreJob, found: dict) -> dict:
    """What to compare: a set from before the canary existed can only be compared on the seal state."""
    if "canary" not in job.figures:
        logger.warning(f"{job.node.name}: OpenBao: the set records no canary; only the seal state is compared")
        return {key: value for key, value in found.items() if key != "canary"}
    return found


#: The scratch server of a restore or drill listens on loopback this far above the API port.
DRILL_PORT_OFFSET = 10000
DRILL_UNIT = "gpuaas-openbao-drill"
_SCRATCH = """read -r keys; read -r token; set -e
{functions}
api=http://127.0.0.1:{port}
systemctl stop {unit} 2>/dev/null || true; systemctl reset-failed {unit} 2>/dev/null || true
rm -rf {dir}; install -d -m 700 {dir}/raft
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
cluster_addr = "https://127.0.0.1:{cluster_port}"
# As the live server's: mlock needs a capability a container host may not grant.
disable_mlock = true
CONFIG
systemd-run --unit {unit} --quiet {program} server -config={dir}/drill.hcl
for i in $(seq 60); do curl -s $api/v1/sys/seal-status >/dev/null && break; sleep 0.5; done
# The same shares and threshold as the environment's: the seal the snapshot brings must fit the running one.
init=$(curl -sS --fail -X PUT --data '{{"secret_shares":{shares},"secret_threshold":{threshold}}}' $api/v1/sys/init)
field() {{ printf '%s' "$init" | python3 -c "import json, sys; v = json.load(sys.stdin)['$1']; \\
print(' '.join(v) if isinstance(v, list) else v)"; }}
unseal() {{ for k in $1; do printf '{{"key":"%s"}}' "$k" | curl -sS -X PUT --data @- \\
  $api/v1/sys/unseal >/dev/null; done; }}
unseal "$(field keys_base64)"
for i in $(seq 60); do curl -s $api/v1/sys/leader | grep -q '"is_self":true' && break; sleep 0.5; done
field root_token | {{ read -r scratch_token; printf 'X-Vault-Token: %s\\n' "$scratch_token"; }} | \\
  curl -sS --fail-with-body -H @- -X POST -T {staged} $api/v1/sys/storage/raft/snapshot-force >/dev/null
# The restored barrier is the snapshot's: only the environment's own unseal keys open it.
for i in $(seq 60); do curl -s $api/v1/sys/seal-status | grep -q '"sealed":true' && break; sleep 0.5; done
unseal "$keys"
for i in $(seq 60); do [ "$(curl -s -o /dev/null -w '%{{http_code}}' $api/v1/sys/health)" = 200 ] && break; \\
  sleep 0.5; done
printf '{{"status":%s,"canary":"%s"}}\\n' "$(curl -sS $api/v1/sys/seal-status)" "$(canary $api)"
"""


def _scratch_dir(profile: Profile) -> str:
    return posixpath.join(staging_dir(profile), "scratch")


def _prepare_staging(target: ServiceHost) -> None:
    """An empty root-only staging directory; refused while an unfinished restore's journal is there."""
    staging = shlex.quote(staging_dir(target.profile))
    found = target.shell.run(
        f"systemctl stop {DRILL_UNIT} 2>/dev/null; systemctl reset-failed {DRILL_UNIT} 2>/dev/null; "
        f"if [ -e {staging}/applying ]; then echo applying; exit 0; fi; "
        f"if [ -e {staging} ]; then echo leftover; rm -rf {staging}; fi; install -d -m 700 {staging}",
        "preparing the OpenBao staging directory",
    )
    if "applying" in found:
        raise HostCommandError(
            f"{target.node.name}: an unfinished OpenBao restore waits in "
            f"{staging_dir(target.profile)}; run the restore again (it puts the live state "
            "back first)"
        )
    if "leftover" in found:
        logger.warning(f"{target.node.name}: OpenBao: removed the staged files an earlier restore or drill left")


def _staged(job: RestoreJob) -> dict:
    """The snapshot written to the staging directory (its sha256 checked once it is all read), then
    restored into a scratch OpenBao on loopback and unsealed with the environment's keys: the figures
    found there (seal state, canary). The scratch server is stopped; the staged snapshot is kept."""
    _prepare_staging(job)
    staging = staging_dir(job.profile)
    staged = shlex.quote(posixpath.join(staging, ARTIFACT))
    with (
        job.open(ARTIFACT) as snapshot,
        job.shell.writer(f"umask 077 && cat > {staged}.part", "staging the OpenBao snapshot") as target,
    ):
        copy_stream(snapshot, target)
    job.shell.run(f"mv {staged}.part {staged}", "keeping the staged OpenBao snapshot")
    settings = settings_for(job.profile)
    port = settings.port + DRILL_PORT_OFFSET
    scratch = shlex.quote(_scratch_dir(job.profile))
    script = _SCRATCH.format(
        functions=_FUNCTIONS,
        port=port,
        cluster_port=port + 1,
        unit=DRILL_UNIT,
        dir=scratch,
        program=PROGRAM_LINK,
        shares=settings.key_shares,
        threshold=settings.key_threshold,
        staged=staged,
    )
    try:
        answer = json.loads(
            job.shell.run(script, "proving the snapshot in a scratch OpenBao", secret=_keys_and_token(job))
        )
    finally:
        job.shell.run(f"systemctl stop {DRILL_UNIT} 2>/dev/null; rm -rf {scratch}", "removing the scratch OpenBao")
    return _figures(answer["status"], answer["canary"])


def _clear_staging(target: ServiceHost) -> None:
    """Remove the staged snapshot, unless an unfinished restore's journal is there (the rollback owns it)."""
    staging = shlex.quote(staging_dir(target.profile))
    target.shell.run(f"[ -e {staging}/applying ] || rm -rf {staging}", "removing the staged OpenBao snapshot")


def _apply_script(target: ServiceHost, snapshot: str) -> str:
    """snapshot-force of a file on the host, then the live server unsealed with the environment's keys
    if the snapshot left it sealed, and awaited until active."""
    api, trust = _live(target)
    return (
        "read -r keys; read -r token; set -e\n"
        + _FUNCTIONS
        + f"hdr | curl -sS --fail-with-body -o /dev/null -H @- {trust} -X POST -T {snapshot} "
        f"{api}/v1/sys/storage/raft/snapshot-force\n"
        f"for i in $(seq 20); do curl -s {trust} {api}/v1/sys/seal-status | grep -q '\"sealed\":true' && break; "
        "sleep 0.25; done\n"
        f"if curl -s {trust} {api}/v1/sys/seal-status | grep -q '\"sealed\":true'; then for k in $keys; do "
        f'printf \'{{"key":"%s"}}\' "$k" | curl -sS {trust} -X PUT --data @- {api}/v1/sys/unseal >/dev/null; '
        "done; fi\n"
        f"for i in $(seq 60); do [ \"$(curl -s {trust} -o /dev/null -w '%{{http_code}}' {api}/v1/sys/health)\" = "
        "200 ] && exit 0; sleep 0.5; done; echo 'OpenBao did not become active' >&2; exit 1\n"
    )


def _recover(job: RestoreJob) -> None:
    """A run cut short while applying (the `applying` journal is there) is undone: the live state kept
    before it is applied back. Logged; the staging directory is cleared afterwards by the next step."""
    staging = shlex.quote(staging_dir(job.profile))
    kept = f"{staging}/live.snap"
    pending = job.shell.run(
        f"[ -e {staging}/applying ] && [ -s {kept} ] && echo pending || true",
        "looking for an unfinished OpenBao restore",
    )
    if "pending" in pending:
        job.shell.run(
            _apply_script(job, kept),
            "putting back the OpenBao state an unfinished restore replaced",
            secret=_keys_and_token(job),
        )
        logger.warning(f"{job.node.name}: OpenBao: an unfinished restore was rolled back to the state kept before it")
    job.shell.run(f"rm -f {staging}/applying", "clearing the OpenBao restore journal")


def restore(job: RestoreJob) -> dict:
    """The snapshot staged and proven in a scratch OpenBao (sha256, seal state, canary), a snapshot of
    the live state kept, then the staged one applied; the kept state is applied back when the live
    server does not then show the manifest's figures. The figures found."""
    _refuse_unknown(job)
    _recover(job)
    try:
        proven = _staged(job)
    except Exception:
        _clear_staging(job)
        raise
    wrong = differences(job.figures, _expected(job, proven))
    staging = shlex.quote(staging_dir(job.profile))
    if wrong:
        _clear_staging(job)
        raise RestoreRefused(
            f"{job.node.name}: the OpenBao snapshot does not hold the state the manifest recorded "
            f"({'; '.join(wrong)}); the live server was not touched"
        )
    kept = f"{staging}/live.snap"
    job.shell.run(
        _curl(job, f"-o {kept}.part", "/v1/sys/storage/raft/snapshot")
        + f" && mv {kept}.part {kept} && touch {staging}/applying",
        "keeping a snapshot of the live OpenBao state",
        secret=_token(job),
    )
    try:
        job.shell.run(
            _apply_script(job, f"{staging}/{ARTIFACT}"), "applying the OpenBao snapshot", secret=_keys_and_token(job)
        )
        found = figures(job)
        wrong = differences(job.figures, _expected(job, found))
        if wrong:
            raise HostCommandError(
                f"{job.node.name}: after the restore OpenBao showed other figures than the "
                f"manifest ({'; '.join(wrong)}); the live state was put back"
            )
    except Exception:
        job.shell.run(_apply_script(job, kept), "putting back the live OpenBao state", secret=_keys_and_token(job))
        job.shell.run(f"rm -rf {staging}", "removing the staged OpenBao snapshots")
        raise
    job.shell.run(f"rm -f {staging}/applying && rm -rf {staging}", "removing the OpenBao state the restore replaced")
    return _expected(job, found)


def drill(job: RestoreJob) -> dict:
    """The snapshot staged where a restore stages it, restored into a scratch OpenBao (loopback, its
    own raft directory, a transient systemd unit) and unsealed with the environment's stored keys;
    the canary read back there proves that snapshot and keys together bring the secrets back. The
    scratch server and the staged snapshot are removed afterwards."""
    _refuse_unknown(job)
    try:
        return _expected(job, _staged(job))
    finally:
        _clear_staging(job)
