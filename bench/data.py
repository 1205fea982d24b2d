"""Benchmark: converge of every data service on fresh local hosts, and the no-op re-converge.

    python bench/data.py [--repeats 5]

Writes bench/results/data.json and bench/results/data.md. Needs the local lane (Docker).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from converge import RESULTS, measure  # noqa: E402

from gpuaas.lane import machine  # noqa: E402
from gpuaas.profile import load_profile  # noqa: E402


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--repeats", type=int, default=5)
    opts = args.parse_args()
    machine.ensure_engine()
    profile_path = REPO / "inventories" / "local.yml"
    services = load_profile(profile_path).services
    deployed = [name for name in type(services).model_fields if getattr(getattr(services, name), "enabled", True)]
    row = measure(REPO / "inventories" / "local.py", profile_path, opts.repeats, deploy="deploys/data.py")
    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "services": deployed,
        "data": row,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "data.json").write_text(json.dumps(results, indent=2) + "\n")
    table = [
        "| run | services | cold converge s | changed ops | no-op re-converge s (median) |",
        "|---|---|---:|---:|---:|",
        f"| deploys/data.py, fresh local hosts | {', '.join(deployed)} | {row['cold_s']} | {row['cold_changed']} "
        f"| {row['noop_s']} |",
    ]
    (RESULTS / "data.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
