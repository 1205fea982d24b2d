"""Benchmark: converge of the local lane, its no-op re-converge, and fan-out of roles/common.

    python bench/converge.py [--sizes 2 8 24] [--repeats 3]

Writes bench/results/converge.json and bench/results/converge.md. Needs the local lane (Docker).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gpuaas import local_lane  # noqa: E402
from gpuaas.profile import load_profile  # noqa: E402

RESULTS = REPO / "bench" / "results"
FANOUT_SUBNET = "172.30.78"


def converge(inventory: Path, deploy: str = "deploys/site.py") -> tuple[float, dict]:
    """One `pyinfra --json` run of a deploy; returns wall seconds and pyinfra's totals."""
    start = time.perf_counter()
    result = subprocess.run(
        ["pyinfra", "-y", "--json", str(inventory), deploy],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"converge of {inventory} failed:\n{result.stderr[-3000:]}")
    return elapsed, json.loads(result.stdout)["results"]["totals"]


def fanout_profile(size: int, directory: Path) -> Path:
    """A copy of the local profile with `size` hosts: one server with the data services, the rest GPU agents."""
    raw = yaml.safe_load((REPO / "inventories" / "local.yml").read_text())
    raw["topology"] = "two-node" if size == 2 else "multi-node"
    raw["network"]["node_cidr"] = f"{FANOUT_SUBNET}.0/24"
    raw["hosts"] = [{"name": "bench-00", "address": f"{FANOUT_SUBNET}.10", "groups": ["rke2_servers", "data"]}]
    raw["hosts"] += [
        {"name": f"bench-{i:02d}", "address": f"{FANOUT_SUBNET}.{10 + i}", "groups": ["rke2_agents"], "ring": i % 5}
        for i in range(1, size)
    ]
    raw["dns"]["records"] = [{**r, "target": "bench-00"} for r in raw["dns"]["records"]]
    raw["backup"]["endpoint"] = f"http://{FANOUT_SUBNET}.10:8333"
    path = directory / "local.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    inventory = directory / "local.py"
    inventory.write_text(f"from gpuaas.inventory import load_groups\n\nglobals().update(load_groups({str(path)!r}))\n")
    return inventory


def cpu_busy(window: float = 2.0) -> float:
    """Share of the machine's CPU time in use over `window` seconds (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    busy_a, total_a = sample()
    time.sleep(window)
    busy_b, total_b = sample()
    return (busy_b - busy_a) / max(total_b - total_a, 1)


def settle(max_seconds: float = 120, below: float = 0.15) -> float:
    """Wait until the hosts' post-install work (package triggers, first service starts) is over, so
    the no-op figures measure the deploy, not the tail of the cold converge. Returns the CPU share then."""
    deadline = time.monotonic() + max_seconds
    busy = cpu_busy()
    while busy > below and time.monotonic() < deadline:
        busy = cpu_busy()
    return round(busy, 3)


def measure(inventory: Path, profile_path: Path, repeats: int, deploy: str = "deploys/site.py") -> dict:
    profile = load_profile(profile_path)
    local_lane.down(profile)
    start = time.perf_counter()
    local_lane.up(profile, log=lambda line: None)
    boot = time.perf_counter() - start
    cold, cold_totals = converge(inventory, deploy)
    busy = settle()
    noops = []
    for _ in range(repeats):
        seconds, totals = converge(inventory, deploy)
        if totals["success"] != 0:
            raise SystemExit(f"no-op re-converge changed {totals['success']} operations: not idempotent")
        noops.append(seconds)
    return {
        "cpu_busy_before_noop": busy,
        "hosts": len(profile.hosts),
        "boot_s": round(boot, 2),
        "cold_s": round(cold, 2),
        "cold_changed": cold_totals["success"],
        "noop_s": round(statistics.median(noops), 2),
        "noop_runs_s": [round(s, 2) for s in noops],
    }


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--sizes", type=int, nargs="+", default=[2, 8, 24])
    args.add_argument("--repeats", type=int, default=5)
    opts = args.parse_args()
    local_lane.ensure_engine()
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    print("local lane: full converge from fresh hosts, then no-op re-converge", flush=True)
    results["local_lane"] = measure(REPO / "inventories" / "local.py", REPO / "inventories" / "local.yml", opts.repeats)
    results["fanout"] = []
    for size in opts.sizes:
        print(f"fan-out of roles/common to {size} hosts", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            inventory = fanout_profile(size, Path(tmp))
            results["fanout"].append(measure(inventory, Path(tmp) / "local.yml", opts.repeats))
            local_lane.down(load_profile(Path(tmp) / "local.yml"))
    noop = {row["hosts"]: row["noop_s"] for row in results["fanout"]}
    if 2 in noop and 24 in noop:
        results["noop_24_over_2"] = round(noop[24] / noop[2], 2)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "converge.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "| run | hosts | boot s | cold converge s | changed ops | no-op re-converge s (median) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, row in [("local lane", results["local_lane"])] + [
        ("fan-out roles/common", r) for r in results["fanout"]
    ]:
        cells = [label, row["hosts"], row["boot_s"], row["cold_s"], row["cold_changed"], row["noop_s"]]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    if "noop_24_over_2" in results:
        lines.append(
            f"\nno-op 24 hosts / no-op 2 hosts: {results['noop_24_over_2']}x (target <= 2.5x); "
            f"2-host no-op target < 5 s"
        )
    (RESULTS / "converge.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
