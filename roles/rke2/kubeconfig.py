"""The cluster's kubeconfig on the controller: fetched from the first server, pointed at an address
the controller reaches, and merged under its own name into the operator's kubeconfig."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import yaml
from pyinfra import host, logger
from pyinfra.api import FunctionCommand, operation
from pyinfra.facts.files import Sha256File

from gpuaas.operations import read_private
from gpuaas.profile import REPO_ROOT
from roles.rke2.config import KUBECONFIG

#: Where the digest of the last fetched kubeconfig is kept, so an unchanged one is not fetched again.
STAMPS = REPO_ROOT / ".cache" / "kubeconfig"


def default_path() -> Path:
    """The operator's kubeconfig: the first of $KUBECONFIG, else ~/.kube/config."""
    paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return Path(paths[0]) if paths else Path.home() / ".kube" / "config"


def _named(entries: list[dict], name: str, entry: dict) -> list[dict]:
    """`entries` with the one called `name` replaced by (or extended with) `entry`; the others kept."""
    return [e for e in entries if e.get("name") != name] + [entry]


def merged(existing: dict[str, Any] | None, fetched: dict[str, Any], name: str, server: str) -> dict[str, Any]:
    """The operator's kubeconfig with the cluster, user and context `name` from RKE2's kubeconfig
    (server URL replaced). Other entries are kept; the current context is set only when there is none."""
    config = dict(existing or {"apiVersion": "v1", "kind": "Config", "preferences": {}})
    cluster = dict(fetched["clusters"][0]["cluster"], server=server)
    user = fetched["users"][0]["user"]
    config["clusters"] = _named(config.get("clusters") or [], name, {"name": name, "cluster": cluster})
    config["users"] = _named(config.get("users") or [], name, {"name": name, "user": user})
    context = {"name": name, "context": {"cluster": name, "user": name}}
    config["contexts"] = _named(config.get("contexts") or [], name, context)
    config.setdefault("current-context", name)
    if not config["current-context"]:
        config["current-context"] = name
    return config


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, readable by its owner only, without a moment of wider access."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(f".{path.name}.gpuaas-partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    partial.replace(path)


@operation(is_idempotent=False)
def kubeconfig_on_controller(environment: str, server: str, target: str):
    """
    Fetch RKE2's kubeconfig from this server into the controller's kubeconfig `target` as context
    `gpuaas-ENVIRONMENT`, its server URL replaced by `server`. Nothing happens when the server's file
    and the context are unchanged since the last fetch. The file's keys are never printed.

    + environment: the profile's name
    + server: the API URL the controller reaches
    + target: the controller's kubeconfig file
    """
    name, stamp = f"gpuaas-{environment}", STAMPS / f"{environment}.sha256"
    digest = host.get_fact(Sha256File, path=KUBECONFIG)
    wanted = hashlib.sha256(f"{digest} {server} {target}".encode()).hexdigest()
    current = Path(target)
    present = current.exists() and name in {
        c.get("name") for c in (yaml.safe_load(current.read_text()) or {}).get("contexts") or []
    }
    if digest and present and stamp.exists() and stamp.read_text().strip() == wanted:
        host.noop(f"context {name} in {target} is current")
        return
    yield FunctionCommand(_fetch, (name, server, current, stamp, wanted), {})


# pyinfra passes `state` and `host` to a callback only when its parameters have exactly these names.
def _fetch(state, host, name: str, server: str, target: Path, stamp: Path, wanted: str) -> bool:
    text = read_private(host, KUBECONFIG)
    if text is None:
        host.log_styled(f"cannot read {KUBECONFIG}", fg="red", log_func=logger.error)
        return False
    fetched = yaml.safe_load(text)
    existing = yaml.safe_load(target.read_text()) if target.exists() else None
    write_private(target, yaml.safe_dump(merged(existing, fetched, name, server), sort_keys=False))
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(wanted + "\n")
    logger.info(f"{host.print_prefix}kubeconfig context {name} written to {target} (server {server})")
    return True
