"""python -m tests.doubles.gpu DIR: the GPU double on local-server, declared there as two H100s with a
preinstalled driver, in the RKE2 double's cluster (release v0.0.1+double1); converges the cluster and the
GPU hosts with it and writes what the readback and a second GPU run report to DIR (read by molecule/gpu)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from gpuaas.lane.access import config_file
from gpuaas.profile import REPO_ROOT, load_profile
from tests.doubles.gpu import DRIVER, install_script
from tests.doubles.rke2 import release_inventory

HOST = "local-server"
DECLARED = {"vendor": "nvidia", "count": 2, "model": "H100"}


def variant(directory: Path) -> Path:
    """The RKE2 double's local variant with local-server declaring the double's GPUs, its driver preinstalled
    at the double's version."""
    inventory = release_inventory(directory, "v0.0.1+double1")
    profile_file = directory / "local.yml"
    raw = yaml.safe_load(profile_file.read_text())
    server = next(h for h in raw["hosts"] if h["name"] == HOST)
    server["gpu"] = DECLARED
    server.setdefault("roles", {})["gpu"] = {"driver": {"method": "preinstalled", "branch": "550", "version": DRIVER}}
    profile_file.write_text(yaml.safe_dump(raw))
    return inventory


def pyinfra(*arguments: str) -> subprocess.CompletedProcess:
    result = subprocess.run(["pyinfra", "-y", *arguments], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"pyinfra {' '.join(arguments)} failed:\n{result.stderr[-3000:]}")
    return result


def main() -> None:
    directory = Path(sys.argv[1])
    directory.mkdir(parents=True, exist_ok=True)
    inventory = str(variant(directory))
    ssh = ["ssh", "-F", str(config_file(load_profile("local"))), HOST, "sudo sh"]
    subprocess.run(ssh, input=install_script(), text=True, check=True, timeout=300)
    pyinfra(inventory, "deploys/cluster.py")
    second = pyinfra("--json", inventory, "deploys/gpu.py")
    (directory / "gpu-totals.json").write_text(json.dumps(json.loads(second.stdout)["results"]["totals"]))
    readback = pyinfra(inventory, "deploys/readback.py", "-v")
    (directory / "readback.txt").write_text(readback.stderr + readback.stdout)
    os.chmod(directory / "readback.txt", 0o600)


if __name__ == "__main__":
    main()
