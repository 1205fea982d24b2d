"""Lane profiles shaped like a shipped profile: the same host names, groups, rings, GPU entries, labels,
services, settings and pins, moved onto a local network and reached over SSH with sudo.

What the shape changes, and why (nothing else differs from the shipped profile):
- `network.node_cidr` and every host address: a subnet of this machine (the same prefix length, each
  host at the same offset); every other mention of a host address (DNS targets, URLs) follows.
- `connection`: SSH as the profile's user with sudo, with the lane's key and known_hosts.
- `secrets`: every value is generated for the lane (`.secrets/lane-ENV/`), or stored there when a
  deploy writes it; no value is read from, or written back to, the shipped profile's sources.
- `roles.common.time_sync`: no NTP server, clock left alone (no traffic leaves the machine, and the
  containers share the machine's clock).
- `roles.gpu.on_mismatch`: `report` (a container has no GPU: a GPU host's missing GPUs are reported, as
  on the local profile, instead of failing its run).
- `backup.endpoint` outside the environment: the controller's address on the lane network, where a
  test may run an S3 store; nothing else outside the machine is ever contacted.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from gpuaas.lane import LaneError
from gpuaas.profile import REPO_ROOT, Profile, load_profile, profile_path

SHIPPED = ("dev", "demo", "staging", "prod")
LANES_DIR = REPO_ROOT / ".lanes"
#: Each shipped environment's lane lives in its own /22 of 172.30.0.0/16 (the local profile uses
#: 172.30.77.0/24 and the fan-out benchmark 172.30.78.0/24).
LANE_BLOCKS = {env: ipaddress.ip_network(f"172.30.{80 + 4 * index}.0/22") for index, env in enumerate(SHIPPED)}
#: Secret fields whose value has a format of its own, which a generated value does not have.
FORMATTED_SECRETS = ("backup.encryption.identity", "services.openbao.tls_cert", "services.openbao.tls_key")
LANE_S3_PORT = 8333


def lane_dir(env: str) -> Path:
    return LANES_DIR / env


def lane_profile_path(env: str) -> Path:
    return lane_dir(env) / f"{env}.yml"


def lane_inventory_path(env: str) -> Path:
    return lane_dir(env) / f"{env}.py"


def lane_network(env: str, prefixlen: int) -> ipaddress.IPv4Network:
    block = LANE_BLOCKS[env]
    if prefixlen < block.prefixlen:
        raise LaneError(
            f"inventories/{env}.yml: network.node_cidr is a /{prefixlen}; a lane holds at most a /{block.prefixlen}"
        )
    return ipaddress.ip_network(f"{block.network_address}/{prefixlen}")


def _replace_addresses(node: Any, moved: dict[str, str]) -> Any:
    """Every string that names a moved address (alone, or inside a URL) names its new address."""
    if isinstance(node, dict):
        return {key: _replace_addresses(value, moved) for key, value in node.items()}
    if isinstance(node, list):
        return [_replace_addresses(value, moved) for value in node]
    if isinstance(node, str):
        for old, new in moved.items():
            node = re.sub(rf"(?<![\w.]){re.escape(old)}(?![\w.])", new, node)
    return node


def shape(shipped: Profile, raw: dict) -> dict:
    """The lane profile's data for the shipped profile `shipped` (validated) whose file holds `raw`."""
    env = shipped.name
    for path in FORMATTED_SECRETS:
        if path in shipped.secret_refs():
            raise LaneError(
                f"inventories/{env}.yml: {path}: a lane cannot make up a value of this secret's format; "
                "shape a copy of the profile without it"
            )
    old_net = shipped.network.node_cidr
    new_net = lane_network(env, old_net.prefixlen)
    moved = {
        str(node.address): str(new_net.network_address + (int(node.address) - int(old_net.network_address)))
        for node in shipped.hosts
    }
    data = copy.deepcopy(raw)
    secrets = data.pop("secrets", {})
    data = _replace_addresses(data, moved)
    data["description"] = f"The local lane shaped like {env}: {shipped.description}".strip()
    data["lane"] = {"shaped_from": env}
    data["network"]["node_cidr"] = str(new_net)
    scope = f".secrets/lane-{env}/ssh"
    data["connection"] = {
        "kind": "ssh",
        "user": shipped.connection.user,
        "port": 22,
        "sudo": shipped.connection.sudo,
        "identity_file": f"{scope}/id_ed25519",
        "known_hosts_file": f"{scope}/known_hosts",
    }
    written = shipped.written_secrets()
    data["secrets"] = {
        name: {"stored": True} if name in written else {"generate": source.get("generate") or 32}
        for name, source in secrets.items()
    }
    common = data.setdefault("roles", {}).setdefault("common", {})
    common["time_sync"] = {"servers": [], "control_clock": False}
    data["roles"].setdefault("gpu", {})["on_mismatch"] = "report"
    for host in data["hosts"]:
        host.get("roles", {}).get("common", {}).pop("time_sync", None)
        host.get("roles", {}).get("gpu", {}).pop("on_mismatch", None)
    endpoint = urlsplit(data["backup"]["endpoint"])
    if endpoint.hostname not in moved.values():
        gateway = next(new_net.hosts())
        data["backup"]["endpoint"] = urlunsplit(("http", f"{gateway}:{LANE_S3_PORT}", "", "", ""))
    return data


def write_shape(env: str) -> Path:
    """Write the lane profile shaped like inventories/ENV.yml and the pyinfra inventory that loads it
    (both under .lanes/ENV/); returns the profile's path. Validated like any profile."""
    if env not in SHIPPED:
        raise LaneError(f"no shipped profile '{env}' to shape a lane like (shipped: {', '.join(SHIPPED)})")
    source = profile_path(env)
    shipped = load_profile(source)
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    target = lane_profile_path(env)
    target.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# The local lane shaped like inventories/{env}.yml, written by `gpuaas local up --shape {env}`.\n"
        "# Regenerated on every `up`: change the shipped profile, not this file.\n"
    )
    target.write_text(header + yaml.safe_dump(shape(shipped, raw), sort_keys=False), encoding="utf-8")
    load_profile(target)
    lane_inventory_path(env).write_text(
        f'"""pyinfra inventory of the local lane shaped like {env}."""\n\n'
        "from gpuaas.inventory import load_groups\n\n"
        f"globals().update(load_groups({str(target)!r}))\n",
        encoding="utf-8",
    )
    return target
