"""Test deploy: write, for each host, every deployed role's desired items as JSON to
$GPUAAS_DESIRED_ITEMS_DIR/HOST.json (mode 0600): the role, each item's name, class and plain
attributes, and its probes. Changes nothing on the hosts (it reads the facts some roles' items need,
the host's memory for PostgreSQL) and queues no operation.

GPUAAS_DESIRED_ITEMS_DIR=DIR pyinfra -y inventories/local.py tests/deploys/desired_items.py

A secret's value is never written: a SecretFile's probe holds only its sha1 digest, and no item's
content or context is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pyinfra import host

from gpuaas.context import current_node, current_profile
from gpuaas.discovery import all_roles

OUTPUT_ENV = "GPUAAS_DESIRED_ITEMS_DIR"
#: The attributes written as they are: names, paths, modes and owners, never content.
PLAIN = ("path", "mode", "user", "group", "unit", "link", "target", "line", "names", "private_dirs")


def plain(item: object) -> dict:
    """The item's attributes of PLAIN it has, as JSON values (tuples as lists)."""
    found = {}
    for attribute in PLAIN:
        value = getattr(item, attribute, None)
        if isinstance(value, str | int):
            found[attribute] = value
        elif isinstance(value, tuple) and all(isinstance(v, str) for v in value):
            found[attribute] = list(value)
    return found


def described(role_name: str, item) -> dict:
    return {
        "role": role_name,
        "name": item.name,
        "class": type(item).__name__,
        "attributes": plain(item),
        "probes": [
            {"key": p.key, "command": p.command, "wanted": p.wanted, "pattern": p.pattern} for p in item.probes()
        ],
    }


def deployed_items() -> list[dict]:
    """Every item of each role that applies to the current host, is deployed and has a desired state."""
    profile, node = current_profile(), current_node()
    return [
        described(role.name, item)
        for role in all_roles()
        if role.desired and role.applies(node) and role.not_deployed_because(profile) is None
        for item in role.items(profile, node)
    ]


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` on the controller, readable by its owner only (0600 from the start)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        stream.write(text)
    os.chmod(path, 0o600)


# The controller (@local) is no node of the profile: it has no roles' items.
if host.data.get("gpuaas_node"):
    write_private(Path(os.environ[OUTPUT_ENV]) / f"{host.name}.json", json.dumps(deployed_items(), indent=1))
