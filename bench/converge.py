"""Benchmark: the local lane over SSH with sudo (the operators' path) beside `docker exec`, in the same run:
cold converge from fresh hosts, the no-op re-converge, and the no-op fan-out to 2, 8 and 24 hosts.

    python bench/converge.py [--sizes 2 8 24] [--repeats 5]

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

from gpuaas.lane import hosts as lane_hosts  # noqa: E402
from gpuaas.lane import machine  # noqa: E402
from gpuaas.profile import load_profile  # noqa: E402

RESULTS = REPO / "bench" / "results"
FANOUT_SUBNET = "172.30.78"
TRANSPORTS = {"ssh": "SSH as ops, sudo", "docker": "docker exec, root"}
#: The whole lane's no-op over SSH, and the 24-host no-op against the 2-host one.
TARGET_NOOP_S, TARGET_FANOUT_RATIO = 2.0, 2.5


def converge(inventory: Path, deploy: str = "deploys/site.py") -> tuple[float, dict]:
    """One `pyinfra --json` run of a deploy; returns wall seconds and pyinfra's totals."""
    start = time.perf_counter()
    result = subprocess.run(
        ["pyinfra", "-y", "--json", str(inventory), deploy], cwd=REPO, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"converge of {inventory} failed:\n{result.stderr[-3000:]}")
    return elapsed, json.loads(result.stdout)["results"]["totals"]


def variant(directory: Path, transport: str, size: int | None = None) -> Path:
    """A copy of the local profile reached by `transport`, with `size` hosts when given (one server with
    the data services, the rest GPU agents), and the pyinfra inventory loading it."""
    raw = yaml.safe_load((REPO / "inventories" / "local.yml").read_text())
    if transport == "docker":
        raw["connection"] = {"kind": "docker"}
    if size is not None:
        raw["topology"] = "two-node" if size == 2 else "multi-node"
        raw["network"]["node_cidr"] = f"{FANOUT_SUBNET}.0/24"
        raw["hosts"] = [{"name": "bench-00", "address": f"{FANOUT_SUBNET}.10", "groups": ["rke2_servers", "data"]}]
        raw["hosts"] += [
            {"name": f"bench-{i:02d}", "address": f"{FANOUT_SUBNET}.{10 + i}", "groups": ["rke2_agents"], "ring": i % 5}
            for i in range(1, size)
        ]
        raw["dns"]["records"] = [{**r, "target": "bench-00"} for r in raw["dns"]["records"]]
        raw["backup"]["endpoint"] = f"http://{FANOUT_SUBNET}.10:8333"
    target = directory / transport
    target.mkdir(parents=True, exist_ok=True)
    (target / "local.yml").write_text(yaml.safe_dump(raw, sort_keys=False))
    inventory = target / "local.py"
    loader = f"load_groups({str(target / 'local.yml')!r})"
    inventory.write_text(f"from gpuaas.inventory import load_groups\n\nglobals().update({loader})\n")
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


def cpu_reference() -> float:
    """Seconds one core takes for a fixed piece of pure Python: these machines' speed drifts, so the
    figures are written with it (measured before and after) and compare within one run."""
    start = time.perf_counter()
    total = 0
    for number in range(5_000_000):
        total += number
    return round(time.perf_counter() - start, 3)


def fresh(inventory: Path) -> tuple[dict, float]:
    """Remove and recreate the variant's hosts; its profile and the seconds they took to boot."""
    profile = load_profile(inventory.with_suffix(".yml"))
    lane_hosts.down(profile)
    start = time.perf_counter()
    lane_hosts.up(profile, log=lambda line: None)
    return profile, time.perf_counter() - start


def noops(inventory: Path, repeats: int) -> list[float]:
    runs = []
    for _ in range(repeats):
        seconds, totals = converge(inventory)
        if totals["success"] != 0:
            raise SystemExit(f"no-op re-converge of {inventory} changed {totals['success']} operations")
        runs.append(seconds)
    return runs


def row(label: str, transport: str, hosts: int, boot: float | None, cold: tuple | None, runs: list[float]) -> dict:
    return {
        "run": label,
        "transport": transport,
        "hosts": hosts,
        "boot_s": round(boot, 2) if boot is not None else None,
        "cold_s": round(cold[0], 2) if cold else None,
        "cold_changed": cold[1]["success"] if cold else None,
        "noop_s": round(statistics.median(runs), 2),
        "noop_runs_s": [round(s, 2) for s in runs],
    }


def lane(directory: Path, repeats: int) -> list[dict]:
    """The local lane from fresh hosts, once per transport."""
    rows = []
    for transport in TRANSPORTS:
        inventory = variant(directory, transport)
        profile, boot = fresh(inventory)
        cold = converge(inventory)
        settle()
        rows.append(
            row("local lane (deploys/site.py)", transport, len(profile.hosts), boot, cold, noops(inventory, repeats))
        )
        print(rows[-1], flush=True)
    return rows


def fanout(directory: Path, size: int, repeats: int) -> list[dict]:
    """`size` hosts converged once over SSH; the no-op over each transport on the same hosts."""
    inventories = {transport: variant(directory / f"fanout-{size}", transport, size) for transport in TRANSPORTS}
    profile, boot = fresh(inventories["ssh"])
    cold = converge(inventories["ssh"])
    settle()
    rows = []
    for transport, inventory in inventories.items():
        rows.append(
            row(
                "fan-out (deploys/site.py)",
                transport,
                size,
                boot if transport == "ssh" else None,
                cold if transport == "ssh" else None,
                noops(inventory, repeats),
            )
        )
        print(rows[-1], flush=True)
    lane_hosts.down(profile)
    return rows


def table(results: dict) -> str:
    lines = [
        "| run | transport | hosts | boot s | cold converge s | changed ops | no-op s (median) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for entry in results["rows"]:
        cells = [
            entry["run"],
            TRANSPORTS[entry["transport"]],
            entry["hosts"],
            entry["boot_s"],
            entry["cold_s"],
            entry["cold_changed"],
            entry["noop_s"],
        ]
        lines.append("| " + " | ".join("-" if cell is None else str(cell) for cell in cells) + " |")
    summary, reference = results["summary"], results["machine"]["cpu_reference_s"]
    lines += [
        "",
        f"whole lane no-op over SSH: {summary['lane_noop_ssh_s']} s (target <= {TARGET_NOOP_S} s); "
        f"docker exec: {summary['lane_noop_docker_s']} s",
        f"CPU reference (a fixed pure-Python loop on one core): {reference['before']} s before, "
        f"{reference['after']} s after",
    ]
    if "fanout_24_over_2_ssh" in summary:
        ssh, docker = summary["fanout_24_over_2_ssh"], summary["fanout_24_over_2_docker"]
        lines.append(
            f"no-op 24 hosts / 2 hosts over SSH: {ssh}x (target <= {TARGET_FANOUT_RATIO}x); docker exec: {docker}x"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--sizes", type=int, nargs="+", default=[2, 8, 24])
    args.add_argument("--repeats", type=int, default=5)
    opts = args.parse_args()
    machine.setup(log=lambda line: None)
    results: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "cpu_reference_s": {"before": cpu_reference()},
        },
        "rows": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        print("local lane: cold converge from fresh hosts, then no-op re-converge, per transport", flush=True)
        results["rows"] += lane(Path(tmp), opts.repeats)
        for size in opts.sizes:
            print(f"fan-out to {size} hosts", flush=True)
            results["rows"] += fanout(Path(tmp), size, opts.repeats)
    # The last lane run was the docker one: give the local hosts their SSH access back.
    lane_hosts.up(load_profile(REPO / "inventories" / "local.yml"), log=lambda line: None)
    by = {(r["run"].split(" ")[0], r["transport"], r["hosts"]): r["noop_s"] for r in results["rows"]}
    summary = {"lane_noop_ssh_s": by[("local", "ssh", 2)], "lane_noop_docker_s": by[("local", "docker", 2)]}
    for transport in TRANSPORTS:
        if ("fan-out", transport, 2) in by and ("fan-out", transport, 24) in by:
            summary[f"fanout_24_over_2_{transport}"] = round(
                by[("fan-out", transport, 24)] / by[("fan-out", transport, 2)], 2
            )
    results["machine"]["cpu_reference_s"]["after"] = cpu_reference()
    results["summary"] = summary
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "converge.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "converge.md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
