"""Verify the demo reset on the local lane, the way an operator runs it (pyinfra over SSH as ops with
sudo): the baseline the converge loaded is captured; the demo is used through the services' own clients;
a reset returns it exactly (checksums byte for byte, balances, the deleted persona, the filled stream);
two resets print the same checksums; a reset killed part-way is completed by the next; refusals change
nothing; no secret is printed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from gpuaas.backup import store
from gpuaas.backup.sets import BASELINE, list_sets, set_label
from gpuaas.profile import REPO_ROOT, load_profile
from tests.lane_clients import LaneClients, secret
from tests.local_variant import on_server

CONFIRMED = {"GPUAAS_CONFIRM": "reset local"}
WORKFLOW = f"demo-use-{os.getpid()}"
SEED_BALANCES = [(1, 500000, 73500), (2, 250000, 21000)]


def environment(env: dict | None) -> dict:
    """This process's environment without the scenario's own GPUAAS_ settings (its converge loads), plus `env`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("GPUAAS_")}, **(env or {})}


def pyinfra(env: dict | None = None, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["pyinfra", "-y", *flags, "inventories/local.py", "deploys/reset.py"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env=environment(env),
    )


def checksums(result: subprocess.CompletedProcess) -> list[str]:
    """The reset's checksum lines, without pyinfra's host prefix."""
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "matches the baseline" in output, output[-3000:]
    return [line.split(" checksum ", 1)[1] for line in output.splitlines() if " checksum " in line]


@pytest.fixture(scope="module")
def profile():
    return load_profile("local")


def every_secret(profile) -> list[str]:
    names = ("demo_persona_password", "demo_mfa_seed", "redis_password", "nats_password", "pg_platform_password")
    return [secret(profile, name) for name in names]


class Demo(LaneClients):
    """The demo used through the services' own clients, as the product would."""

    def use(self) -> None:
        """A walkthrough's traces in every store: usage billed, a persona deleted, keys, a stream filled
        and one added, a path written, a workflow left running."""
        with self.pg() as db:
            db.execute("INSERT INTO usage_records VALUES (100, 1, '2026-12-02', 2.50, 7500)")
            db.execute("UPDATE balances SET used = used + 7500 WHERE tenant_id = 1")
            db.execute("DELETE FROM personas WHERE username = 'otto'")
        client = self.redis()
        client.set("session:uma", "signed-in")
        client.hset("tenant:acme:quota", "gpus", "8")

        async def fill(js):
            for index in range(200):
                await js.publish("usage.acme.vision-notebook", b'{"gpu_hours":%d}' % index)
            await js.add_stream(name="SCRATCH", subjects=["scratch.>"])
            await js.publish("scratch.one", b"left over")

        self.nats(fill)
        self.bao("POST", "demo/data/tenants/initech", {"data": {"plan": "trial"}})
        self.temporal(f"workflow start --type Walkthrough --task-queue demo --workflow-id {WORKFLOW}")

    def state(self) -> dict:
        with self.pg() as db:
            balances = db.execute("SELECT tenant_id, credit, used FROM balances ORDER BY 1").fetchall()
            personas = [row[0] for row in db.execute("SELECT username FROM personas ORDER BY id").fetchall()]
            usage = db.execute("SELECT count(*) FROM usage_records").fetchone()[0]

        async def streams(js):
            return {info.config.name: info.state.messages for info in await js.streams_info()}

        return {
            "balances": [tuple(row) for row in balances],
            "personas": personas,
            "usage": usage,
            "keys": sorted(key.decode() for key in self.redis().keys("*")),
            "quota": self.redis().hget("tenant:acme:quota", "gpus"),
            "streams": self.nats(streams),
            "paths": sorted(self.bao("LIST", "demo/metadata/tenants").get("data", {}).get("keys", [])),
        }


@pytest.fixture(scope="module")
def demo(profile):
    return Demo(profile)


@pytest.fixture(scope="module")
def fresh(profile):
    """The loaded baseline captured, and the checksums of a reset right after: the fresh baseline's."""
    captured = pyinfra({"GPUAAS_RESET": "capture", "GPUAAS_CONFIRM": "capture local"})
    assert captured.returncode == 0, (captured.stdout + captured.stderr)[-3000:]
    return checksums(pyinfra(CONFIRMED))


def test_the_capture_keeps_templates_snapshots_and_a_baseline_set(fresh, profile):
    listed = on_server(
        "runuser -u postgres -- psql -XAt -c "
        "\"SELECT datistemplate, datallowconn FROM pg_database WHERE datname = 'platform__baseline'\""
    )
    assert listed.strip() == "t|f"
    assert on_server("stat -c '%a %U' /var/lib/gpuaas/demo-baseline").split() == ["700", "root"]
    index = json.loads(on_server("cat /var/lib/gpuaas/demo-baseline/index.json"))
    assert sorted(index["checksums"]) == ["nats", "openbao", "postgres", "redis"]
    sets = list_sets(store.client(profile), profile.backup.bucket, "local")
    # One baseline set: each capture removes the earlier ones once its own is complete.
    assert [entry["complete"] for set_id, entry in sets.items() if set_label(set_id) == BASELINE] == [True]
    # The seed's rows, keys, streams and paths, as the reset found them.
    expected = {
        "local-server postgres platform public.personas 4 ",
        "local-server postgres platform public.usage_records 4 ",
        "local-server nats USAGE 2 ",
        "local-server nats EVENTS 1 ",
    }
    assert all(any(line.startswith(prefix) for line in fresh) for prefix in expected), fresh
    assert sum(" redis " in line for line in fresh) == 6 and sum(" openbao " in line for line in fresh) == 3


def test_a_used_demo_returns_exactly_to_the_baseline(fresh, demo, profile):
    before = demo.state()
    demo.use()
    used = demo.state()
    assert used["usage"] == 5 and "otto" not in used["personas"] and used["streams"]["USAGE"] == 202
    assert "session:uma" in used["keys"] and "SCRATCH" in used["streams"] and "initech" in used["paths"]

    result = pyinfra(CONFIRMED)
    assert checksums(result) == fresh
    after = demo.state()
    assert after == before and after["balances"] == SEED_BALANCES
    assert after["personas"] == ["uma", "tariq", "paula", "otto"] and after["quota"] == b"4"
    described = json.loads(demo.temporal(f"workflow describe --workflow-id {WORKFLOW}"))
    assert described["workflowExecutionInfo"]["status"] == "WORKFLOW_EXECUTION_STATUS_TERMINATED"
    output = result.stdout + result.stderr
    assert not [value for value in every_secret(profile) if value in output]


def test_two_resets_in_a_row_print_identical_checksums(fresh):
    first, second = pyinfra(CONFIRMED), pyinfra(CONFIRMED)
    assert checksums(first) == checksums(second) == fresh
    report = json.loads((REPO_ROOT / "build" / "local" / "evidence" / "demo-reset.json").read_text())
    assert report["passed"] is True and not any(report["differences"].values())


@pytest.mark.parametrize("after", [2.2, 3.0, 3.8])
def test_a_reset_killed_part_way_is_completed_by_the_next_run(fresh, demo, after):
    demo.use()
    process = subprocess.Popen(
        ["pyinfra", "-y", "inventories/local.py", "deploys/reset.py"],
        cwd=REPO_ROOT,
        env=environment(CONFIRMED),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(after)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert checksums(pyinfra(CONFIRMED)) == fresh


@pytest.mark.parametrize(
    "env, flags, told",
    [
        ({}, (), "refused without GPUAAS_CONFIRM='reset local'"),
        ({"GPUAAS_CONFIRM": "reset demo"}, (), "refused without GPUAAS_CONFIRM='reset local'"),
        ({"GPUAAS_RESET": "capture", **CONFIRMED}, (), "refused without GPUAAS_CONFIRM='capture local'"),
        (CONFIRMED, ("--dry",), "reset plan: return the services of local-server to the captured baseline"),
    ],
)
def test_a_refused_or_dry_run_changes_nothing(fresh, demo, env, flags, told):
    demo.redis().set("marker", "kept")
    result = pyinfra(env, *flags)
    output = result.stdout + result.stderr
    assert told in output and "Traceback" not in output
    assert (result.returncode == 0) == ("--dry" in flags)
    assert demo.redis().get("marker") == b"kept"
    assert checksums(pyinfra(CONFIRMED)) == fresh
