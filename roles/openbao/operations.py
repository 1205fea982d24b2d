"""Operations of roles/openbao: the host's own TLS certificate, and init + unseal."""

from __future__ import annotations

import json
import shlex

from pyinfra import host, logger
from pyinfra.api import FunctionCommand, StringCommand, operation

from gpuaas.errors import SecretError
from gpuaas.facts import CertificateNames
from gpuaas.fieldtypes import SECRET_REF
from gpuaas.operations import connector_arguments
from gpuaas.profile import Host, Profile
from gpuaas.secrets import Secret, describe_source, json_secret, store, writable_path
from roles.openbao.config import CA_CERT, CA_KEY, PENDING_INIT, TLS_CERT, TLS_DIR, TLS_KEY, api_url, client, trusted_ca
from roles.openbao.settings import OpenBaoSettings

CA_DAYS = 3650


@operation()
def host_certificate(common_name: str, names: list[str], days: int, renew_days: int, group: str = "openbao"):
    """
    Keep a server certificate for `names` at /etc/openbao/tls, issued by a CA of the host's own
    (made on first use; neither private key ever leaves the host). Reissued when it is missing, when
    its names differ or when it expires within `renew_days`; the CA is remade only when it expires too.

    + common_name: the certificate's CN
    + names: subjectAltName entries as openssl prints them ("DNS:x", "IP Address:10.0.0.1")
    + days: validity of a new certificate
    + renew_days: reissue this many days before expiry
    + group: the group that may read the key
    """
    current = host.get_fact(CertificateNames, path=TLS_CERT, days=renew_days)
    if current and current["valid"] and current["names"] == sorted(names):
        host.noop(f"{TLS_CERT} is valid for {', '.join(sorted(names))}")
        return
    san = ",".join(name.replace("IP Address:", "IP:") for name in sorted(names))
    key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    extensions = [
        "basicConstraints=CA:FALSE",
        "keyUsage=digitalSignature,keyEncipherment",
        "extendedKeyUsage=serverAuth,clientAuth",
        f"subjectAltName={san}",
    ]
    yield " && ".join(
        [
            f"mkdir -p -m 755 {TLS_DIR} && cd {TLS_DIR} && umask 077",
            f"{{ openssl x509 -in {CA_CERT} -noout -checkend {renew_days * 86400} >/dev/null 2>&1 && test -s {CA_KEY} "
            f"|| openssl req -x509 {key} -keyout {CA_KEY} -out {CA_CERT} -days {CA_DAYS} "
            f"-subj {shlex.quote('/CN=' + common_name + ' OpenBao CA')} 2>/dev/null; }}",
            f"openssl req {key} -keyout {TLS_KEY}.new -out server.csr -subj {shlex.quote('/CN=' + common_name)} "
            "2>/dev/null",
            f"printf '%s\\n' {' '.join(shlex.quote(line) for line in extensions)} > server.ext",
            f"openssl x509 -req -in server.csr -CA {CA_CERT} -CAkey {CA_KEY} -CAcreateserial -days {days} "
            f"-extfile server.ext -out {TLS_CERT}.new 2>/dev/null",
            f"mv {TLS_KEY}.new {TLS_KEY} && mv {TLS_CERT}.new {TLS_CERT} && rm -f server.csr server.ext",
            f"chmod 644 {CA_CERT} {TLS_CERT} && chown root:{group} {TLS_KEY} && chmod 640 {TLS_KEY}",
        ]
    )


@operation(is_idempotent=False)
def initialized_and_unsealed(profile: Profile, node: Host, settings: OpenBaoSettings):
    """
    Initialise the host's OpenBao when it is not (storing init's output in the profile's
    `init_secret`, never printing it) and unseal it with `key_threshold` of the stored shares.
    Keys reach the host only as a root-only file that is removed right after use.

    + profile: the environment's profile (where the init secret is kept)
    + node: the host's profile entry
    + settings: the role's settings
    """
    yield FunctionCommand(_initialize_and_unseal, (profile, node, settings), {})


def _initialize_and_unseal(state, host, profile: Profile, node: Host, settings: OpenBaoSettings) -> bool:
    """Runs while the deploy executes (init's output does not exist before). Returns False on failure,
    after saying why on the host's log line."""

    def run(command: str, stdin: str | None = None) -> tuple[bool, str]:
        extra = {"_stdin": [stdin]} if stdin is not None else {}
        ok, output = host.run_shell_command(
            StringCommand(command), print_output=False, print_input=False, **connector_arguments(host), **extra
        )
        return ok, output.stdout

    def fail(reason: str) -> bool:
        host.log_styled(f"OpenBao: {reason}", fg="red", log_func=logger.error)
        return False

    status = _status(run, settings, node)
    if status is None:
        return fail(f"no answer from {api_url(settings, node)} within 30s (see `journalctl -u openbao`)")
    try:
        if not status["initialized"] or _pending_on_host(run):
            path = _store_init(run, profile, node, settings, initialize=not status["initialized"])
            logger.info(f"{host.print_prefix}OpenBao initialised; unseal keys and root token stored in {path}")
        if status["sealed"] or not status["initialized"]:
            keys = unseal_keys(profile, node, settings)
            if not _unseal(run, settings, node, keys):
                return fail(
                    f"the keys in secret '{settings.init_secret}' did not unseal {node.name}; they may "
                    "belong to an earlier install of its storage"
                )
    except SecretError as error:
        return fail(str(error))
    return True


def _status(run, settings: OpenBaoSettings, node: Host) -> dict | None:
    """The server's seal status, waiting up to 30s for it to answer."""
    command = (
        f"for i in $(seq 60); do {client(settings, node, 'status -format=json')}; [ $? -ne 1 ] && exit 0; "
        "sleep 0.5; done; exit 1"
    )
    ok, text = run(command)
    try:
        return json.loads(text) if ok else None
    except ValueError:
        return None


def _pending_on_host(run) -> bool:
    ok, _ = run(f"test -s {PENDING_INIT}")
    return ok


def _store_init(run, profile: Profile, node: Host, settings: OpenBaoSettings, initialize: bool) -> str:
    """Run init (unless its output already waits on the host), store the output, then remove it from the host."""
    target = writable_path(profile, settings.init_secret)  # before init: refuse early when it cannot be stored
    if initialize:
        init = client(
            settings,
            node,
            f"operator init -key-shares={settings.key_shares} -key-threshold={settings.key_threshold} -format=json",
        )
        ok, _ = run(f"umask 077 && {init} > {PENDING_INIT}.new && mv {PENDING_INIT}.new {PENDING_INIT}")
        if not ok:
            raise SecretError(f"`bao operator init` failed on {node.name}")
    ok, text = run(f"cat {PENDING_INIT}")
    try:
        output = json.loads(text) if ok else None
    except ValueError:
        output = None
    if not isinstance(output, dict) or "unseal_keys_b64" not in output:
        raise SecretError(f"init output on {node.name} ({PENDING_INIT}) is unreadable; it was left there")
    try:
        by_host = json_secret(profile, settings.init_secret)
    except SecretError:
        by_host = {}  # not there yet, or unreadable: store() keeps an unreadable value beside the new one
    if not isinstance(by_host, dict):
        by_host = {}
    by_host[node.name] = {key: output[key] for key in ("unseal_keys_b64", "unseal_threshold", "root_token")}
    store(profile, settings.init_secret, json.dumps(by_host, indent=2, sort_keys=True) + "\n")
    run(f"rm -f {PENDING_INIT}")
    return str(target)


def _stored_entry(profile: Profile, node: Host, settings: OpenBaoSettings, field: str, kind: type):
    """`field` of the host's entry in the init secret, of type `kind`; SecretError naming the secret
    and its source when it holds none."""
    by_host = json_secret(profile, settings.init_secret)
    entry = by_host.get(node.name) if isinstance(by_host, dict) else None
    value = entry.get(field) if isinstance(entry, dict) else None
    if not isinstance(value, kind):
        name = SECRET_REF.match(settings.init_secret).group(1)
        raise SecretError(
            f"{profile.source}: secrets.{name}: the value from {describe_source(profile, name)} "
            f"holds no {field} for {node.name}"
        )
    return value


def unseal_keys(profile: Profile, node: Host, settings: OpenBaoSettings) -> list[str]:
    """The `unseal_threshold` stored shares of the host's init secret (SecretError when it holds none)."""
    keys = _stored_entry(profile, node, settings, "unseal_keys_b64", list)
    return keys[: _stored_entry(profile, node, settings, "unseal_threshold", int)]


def root_token(profile: Profile, node: Host, settings: OpenBaoSettings) -> Secret:
    """The host's root token from the init secret (SecretError when it holds none)."""
    name = SECRET_REF.match(settings.init_secret).group(1)
    return Secret(f"{name}.root_token", _stored_entry(profile, node, settings, "root_token", str))


def _unseal(run, settings: OpenBaoSettings, node: Host, keys: list[str]) -> bool:
    """Submit each key through the API, the request on curl's standard input; True once the server
    reports unsealed."""
    url = f"{api_url(settings, node)}/v1/sys/unseal"
    ca = trusted_ca(settings)
    sealed = True
    for key in keys:
        ok, text = run(f"curl -sS --max-time 10 --cacert {ca} -X PUT --data @- {url}", stdin=json.dumps({"key": key}))
        try:
            sealed = json.loads(text)["sealed"] if ok else True
        except (ValueError, KeyError):
            return False
        if not sealed:
            break
    return not sealed
