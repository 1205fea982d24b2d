"""Benchmark: the no-op re-converge of deploys/data.py and deploys/site.py (or the `--deploys` named) on the
local lane over SSH, this checkout beside a baseline commit of the collection, in the same run: the two
alternate run by run (A B A B ...) against the same converged hosts, so that a drift in the machine's
speed touches both.

    python bench/baseline.py --ref REV [--runs 15] [--deploys deploys/readback.py ...] [--name NAME]

The baseline is checked out with `git worktree` under build/ and run with this checkout's virtualenv,
its own code first on PYTHONPATH. Writes bench/results/NAME.json and NAME.md (NAME: baseline). Needs
the local lane up and converged (`make local`). A run that changes anything stops the benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
DEPLOYS = ("deploys/data.py", "deploys/site.py")


def baseline_checkout(ref: str) -> Path:
    """A worktree of `ref` under build/, sharing this checkout's lane secrets (its hosts are the same)."""
    target = REPO / "build" / "bench-baseline"
    if target.exists():
        subprocess.run(["git", "worktree", "remove", "--force", str(target)], cwd=REPO, check=True)
    subprocess.run(["git", "worktree", "add", "--detach", str(target), ref], cwd=REPO, check=True, capture_output=True)
    (target / ".secrets").symlink_to(REPO / ".secrets")
    return target


def compiled(checkout: Path) -> None:
    """Byte-compile a checkout's code, as an operator's own runs leave it: a run that compiles every module
    would measure the compiler (and these runs may not write bytecode themselves)."""
    folders = [str(checkout / name) for name in ("gpuaas", "roles", "deploys", "filters", "inventories")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *folders], check=True)


def no_op(checkout: Path, deploy: str) -> tuple[float, float]:
    """Wall and CPU seconds (its processes', the SSH client's included) of one `pyinfra --json` no-op."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pyinfra", "-y", "--json", "inventories/local.py", deploy],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{deploy} from {checkout} failed:\n{result.stderr[-3000:]}")
    totals = json.loads(result.stdout)["results"]["totals"]
    if totals["success"] != 0:
        raise SystemExit(f"{deploy} from {checkout} changed {totals['success']} operations: not a no-op")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def compare(baseline: Path, deploy: str, runs: int) -> dict:
    """Alternating runs after one warm-up each; the ratio is taken pair by pair."""
    no_op(REPO, deploy), no_op(baseline, deploy)
    current, base = [], []
    for _ in range(runs):
        current.append(no_op(REPO, deploy))
        base.append(no_op(baseline, deploy))
    return {
        "deploy": deploy,
        "runs": runs,
        "current_wall_s": spread([wall for wall, _ in current]),
        "baseline_wall_s": spread([wall for wall, _ in base]),
        "current_cpu_s": spread([cpu for _, cpu in current]),
        "baseline_cpu_s": spread([cpu for _, cpu in base]),
        "wall_ratio": spread([a[0] / b[0] for a, b in zip(current, base, strict=True)]),
        "cpu_ratio": spread([a[1] / b[1] for a, b in zip(current, base, strict=True)]),
    }


def table(results: dict) -> str:
    lines = [
        f"baseline: {results['baseline']}; current: {results['current']}",
        "",
        "| no-op | runs | current wall s | baseline wall s | wall ratio (min-max) "
        "| current cpu s | baseline cpu s | cpu ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        ratio = row["wall_ratio"]
        lines.append(
            f"| {row['deploy']} | {row['runs']} | {row['current_wall_s']['median']} | "
            f"{row['baseline_wall_s']['median']} | {ratio['median']} ({ratio['min']}-{ratio['max']}) | "
            f"{row['current_cpu_s']['median']} | {row['baseline_cpu_s']['median']} | {row['cpu_ratio']['median']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--ref", required=True, help="the baseline commit (a git revision)")
    args.add_argument("--runs", type=int, default=15)
    args.add_argument("--deploys", nargs="+", default=list(DEPLOYS), help="the deploys to time (no-op runs)")
    args.add_argument("--name", default="baseline", help="the results' file name under bench/results/")
    opts = args.parse_args()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
    base_rev = subprocess.run(["git", "rev-parse", "--short", opts.ref], cwd=REPO, capture_output=True, text=True)
    baseline = baseline_checkout(opts.ref)
    compiled(REPO), compiled(baseline)
    try:
        rows = [compare(baseline, deploy, opts.runs) for deploy in opts.deploys]
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=REPO, check=False)
    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "baseline": base_rev.stdout.strip(),
        "current": head.strip(),
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{opts.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / f"{opts.name}.md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
