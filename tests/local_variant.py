"""A variant of the local profile for host tests that need artifacts no profile pins (the official
ones that cannot be downloaded here, or their doubles): pinned by their real sha256, then converged."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml

from gpuaas.artifacts import CACHE_DIR
from gpuaas.evidence.packet import Packet
from gpuaas.evidence.written import evidence_dir
from gpuaas.profile import REPO_ROOT


def pin(name: str, archive: Path, version: str, url: str, **extra: str) -> dict:
    """The pin of `archive` as artifact `name`, its file put where the deploy's cache finds it."""
    cached = CACHE_DIR / f"{name}-{version}" / archive.name
    cached.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(archive, cached)
    return {"version": version, "url": url, "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(), **extra}


def inventory(
    directory: Path,
    artifacts: dict[str, dict],
    services: dict[str, dict],
    roles: dict | None = None,
    dns: dict | None = None,
    evidence: dict | None = None,
) -> Path:
    """local.yml with `artifacts` added and `services`, `roles`, `dns` and `evidence` entries replaced, and
    a pyinfra inventory loading it."""
    raw = yaml.safe_load((REPO_ROOT / "inventories" / "local.yml").read_text())
    raw["artifacts"].update(artifacts)
    raw["services"].update(services)
    raw["roles"].update(roles or {})
    raw["dns"].update(dns or {})
    raw["evidence"].update(evidence or {})
    (directory / "local.yml").write_text(yaml.safe_dump(raw))
    loader = f"load_groups({str(directory / 'local.yml')!r})"
    path = directory / "local.py"
    path.write_text(f"from gpuaas.inventory import load_groups\n\nglobals().update({loader})\n")
    return path


def converge(inventory_path: Path, deploy: str = "deploys/data.py", env: dict | None = None) -> dict:
    result = subprocess.run(
        ["pyinfra", "-y", "--json", str(inventory_path), deploy],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=1200,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return totals_of(json.loads(result.stdout)["results"])


def packets() -> set[Path]:
    """The local environment's evidence packets written so far."""
    return set(evidence_dir("local").glob("2*Z.json"))


def newest_packet(before: set[Path]) -> Packet:
    """The packet a readback wrote since `before` (packets())."""
    written = sorted(packets() - before)
    assert written, "the readback wrote no packet"
    return Packet.model_validate_json(written[-1].read_text())


def read_back(inventory_path: Path | str) -> Packet:
    """Run deploys/readback.py with the inventory (it must change nothing) and return its packet."""
    before = packets()
    assert converge(Path(inventory_path), "deploys/readback.py")["success"] == 0
    return newest_packet(before)


def packet_item(packet: Packet, name: str, host: str | None = "local-server"):
    """The packet's one item `name` read on `host`."""
    (found,) = [item for item in packet.items if item.name == name and item.host == host]
    return found


def totals_of(results: dict) -> dict:
    """pyinfra's totals, with `changed`: each operation that changed a host, and the hosts it changed."""
    changed = [f"{op['name']} on {', '.join(op['success'])}" for op in results["operations"] if op["success"]]
    return {**results["totals"], "changed": changed}


def on_server(command: str) -> str:
    return subprocess.run(
        ["docker", "exec", "local-server", "sh", "-c", command], capture_output=True, text=True, check=True
    ).stdout


def fact(name: str, inventory_path: Path | str = "inventories/local.py", host: str = "local-server", **arguments):
    """pyinfra's `fact` command for one host: the fact's value there."""
    command = ["pyinfra", "--json", str(inventory_path), "--limit", host, "fact", name]
    command += [f"{key}={value}" for key, value in arguments.items()]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    (by_host,) = json.loads(result.stdout).values()
    return by_host[host]
