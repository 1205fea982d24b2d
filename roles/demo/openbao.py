"""The demo baseline's OpenBao part: the paths of one KV version 2 mount the baseline owns (`openbao.mount`),
read and written through the host's own API with the root token on standard input. A reset removes every
path of that mount (all versions) and writes the captured ones: nothing outside the mount is touched."""

from __future__ import annotations

import hashlib
import json
import shlex

from gpuaas.backup.service import ServiceHost
from gpuaas.secrets import Secret
from roles.openbao.config import api_url, settings_for, trusted_ca
from roles.openbao.operations import root_token

#: Run on the data host with python3: `export` prints {path: data} of the mount; `apply` makes the mount
#: hold exactly the {path: data} given after the token line (the mount is created when missing).
SCRIPT = r"""
import json, ssl, sys, urllib.error, urllib.request
api, ca, mount, action = sys.argv[1:5]
token = sys.stdin.readline().strip()
context = ssl.create_default_context(cafile=ca)

def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(api + "/v1/" + path, data=data, method=method, headers={"X-Vault-Token": token})
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as answer:
            text = answer.read()
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        sys.exit(f"OpenBao answered {error.code} to {method} {path.split('/')[0]}/...")
    return json.loads(text) if text else {}

def paths(prefix=""):
    listed = call("LIST", f"{mount}/metadata/{prefix}")
    for key in (listed or {}).get("data", {}).get("keys", []):
        if key.endswith("/"):
            yield from paths(prefix + key)
        else:
            yield prefix + key

mounts = call("GET", "sys/mounts") or {}
present = f"{mount}/" in mounts.get("data", mounts)
if action == "export":
    found = {path: call("GET", f"{mount}/data/{path}")["data"]["data"] for path in paths()} if present else {}
    print(json.dumps(found, sort_keys=True))
elif action == "apply":
    wanted = json.loads(sys.stdin.read())
    if not present:
        call("POST", f"sys/mounts/{mount}", {"type": "kv", "options": {"version": "2"},
                                             "description": "the demo baseline's paths"})
    for path in list(paths()) if present else []:
        call("DELETE", f"{mount}/metadata/{path}")
    for path, data in sorted(wanted.items()):
        call("POST", f"{mount}/data/{path}", {"data": data})
"""


def _command(target: ServiceHost, mount: str, action: str) -> str:
    settings = settings_for(target.profile)
    arguments = [api_url(settings, target.node), trusted_ca(settings), mount, action]
    return f"python3 -c {shlex.quote(SCRIPT)} {' '.join(shlex.quote(a) for a in arguments)}"


def _token(target: ServiceHost) -> Secret:
    return root_token(target.profile, target.node, settings_for(target.profile))


def read_paths(target: ServiceHost, mount: str) -> Secret:
    """{path: data} of the mount, as JSON in a Secret (the values may be secrets)."""
    text = target.shell.run(_command(target, mount, "export"), f"reading OpenBao's {mount}/", secret=_token(target))
    return Secret(f"OpenBao {mount}/ paths", text.strip() or "{}")


def write_paths(target: ServiceHost, mount: str, paths: Secret) -> None:
    """The mount made to hold exactly `paths` (JSON {path: data}): every other path removed, all versions."""
    token = _token(target)
    target.shell.run(
        _command(target, mount, "apply"),
        f"writing OpenBao's {mount}/",
        secret=Secret("root token and paths", f"{token.reveal()}\n{paths.reveal()}"),
    )


def checksums(paths: Secret) -> dict[str, str]:
    """{path: SHA256} of each path's data (keys sorted)."""
    return {
        path: hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        for path, data in sorted(json.loads(paths.reveal()).items())
    }
