"""roles/demo without hosts: the environment guard (no flag makes staging or prod resettable), the
confirmation, the baseline's validation (file, field, reason; never a value), retention keeping the
baseline sets, and the pieces the checksums are made of."""

from __future__ import annotations

import datetime
import json
import shutil

import pytest
import yaml

from gpuaas.backup.sets import BASELINE, expired, new_set_id, set_label
from gpuaas.errors import Problem, ProfileError
from gpuaas.profile import REPO_ROOT, load_profile, parse_profile
from roles.demo import engine
from roles.demo import redis as redis_part
from roles.demo.baseline import load_baseline

SHIPPED = ("local", "dev", "demo", "staging", "prod")
#: Every flag an operator might reach for to force a run through.
FORCING = {
    "GPUAAS_CONFIRM": "reset staging",
    "GPUAAS_FORCE": "yes",
    "GPUAAS_RESET_FORCE": "1",
    "FORCE": "1",
}


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
@pytest.mark.parametrize("chosen", engine.MODES)
def test_every_environment_but_demo_and_local_is_refused_whatever_is_set(env, chosen, monkeypatch):
    for name, value in {**FORCING, "GPUAAS_CONFIRM": f"{chosen} {env}"}.items():
        monkeypatch.setenv(name, value)
    profile = load_profile(env)
    refused = engine.environment_refusal(profile, chosen)
    assert refused is not None and f"inventories/{env}.yml" in refused and "not a demo environment" in refused
    assert engine.refusal(profile, chosen, f"{chosen} {env}") == refused
    assert engine.refusal(profile, chosen, f"reset {env}") == refused


def test_a_staging_profile_naming_a_baseline_does_not_validate():
    raw = yaml.safe_load((REPO_ROOT / "inventories" / "staging.yml").read_text())
    raw.setdefault("roles", {})["demo"] = {"baseline": "inventories/demo-baseline"}
    with pytest.raises(ProfileError) as raised:
        parse_profile(raw, "inventories/staging.yml", "staging")
    assert raised.value.problems == [
        Problem("roles.demo.baseline", "a baseline is reset only in demo and local; staging may not name one")
    ]


@pytest.mark.parametrize("env", ["demo", "local"])
def test_demo_and_local_need_their_own_words(env):
    profile = load_profile(env)
    assert engine.environment_refusal(profile, "reset") is None
    for confirmed in (None, "", "reset", f"reset {env} ", "reset staging", f"capture {env}", "yes"):
        refused = engine.refusal(profile, "reset", confirmed)
        assert refused == f"reset is destructive and refused without GPUAAS_CONFIRM='reset {env}'; nothing was changed"
    assert engine.refusal(profile, "reset", f"reset {env}") is None
    assert engine.refusal(profile, "load", f"reset {env}") is None
    assert engine.refusal(profile, "capture", f"reset {env}") is not None
    assert engine.refusal(profile, "capture", f"capture {env}") is None


def test_an_unknown_mode_is_refused_by_name(monkeypatch):
    monkeypatch.setenv(engine.MODE_ENV, "wipe")
    with pytest.raises(engine.ResetRefused, match="GPUAAS_RESET: 'wipe' is not one of reset, capture, load"):
        engine.mode()


def test_the_shipped_baseline_loads_with_its_personas_and_services():
    baseline = load_baseline(load_profile("demo")).model
    assert {p.persona for p in baseline.personas} == {"user", "tenant_admin", "platform_admin", "ops"}
    assert sorted(p.mfa for p in baseline.personas) == ["none", "none", "pending", "totp"]
    assert [d.database for d in baseline.postgres] == ["platform"]
    assert baseline.redis and baseline.nats.streams and baseline.openbao.paths


def _baseline_copy(tmp_path, mutate) -> object:
    """The shipped baseline copied under tmp_path (a repository root of its own), changed by `mutate`."""
    shutil.copytree(REPO_ROOT / "inventories" / "demo-baseline", tmp_path / "inventories" / "demo-baseline")
    path = tmp_path / "inventories" / "demo-baseline" / "baseline.yml"
    raw = yaml.safe_load(path.read_text())
    mutate(raw)
    path.write_text(yaml.safe_dump(raw))
    return tmp_path


@pytest.mark.parametrize(
    "mutate, field, reason",
    [
        (
            lambda raw: raw["postgres"][0].update(files=["postgres/platform/nothing.sql"]),
            "postgres[0].files[0]",
            "postgres/platform/nothing.sql does not exist",
        ),
        (
            lambda raw: raw["postgres"][0].update(database="billing"),
            "postgres[0].database",
            "billing is not a database of services.postgres.databases",
        ),
        (
            lambda raw: raw.update(persona_password="secret:nowhere"),
            "persona_password",
            "names a secret that inventories/local.yml does not define",
        ),
        (lambda raw: raw["redis"].append(dict(raw["redis"][0])), "", "redis: tenant:acme:quota named more than once"),
        (lambda raw: raw["redis"][0].update(type="set"), "redis[0]", "a set key's value is a list"),
        (lambda raw: raw["personas"][2].update(persona="root"), "personas[2].persona", "Input should be"),
        (lambda raw: [p.update(mfa="none") for p in raw["personas"]], "", "one persona has `mfa: totp`"),
    ],
)
def test_a_broken_baseline_names_the_file_the_field_and_the_rule(tmp_path, mutate, field, reason):
    root = _baseline_copy(tmp_path, mutate)
    with pytest.raises(ProfileError) as raised:
        load_baseline(load_profile("local"), repo_root=root)
    report = raised.value.report()
    assert "inventories/demo-baseline/baseline.yml: " + (f"{field}: " if field else "") in report
    assert reason in report and "Traceback" not in report


def test_a_baseline_value_is_never_echoed(tmp_path):
    marker = "do-not-print-this-value"
    root = _baseline_copy(tmp_path, lambda raw: raw["personas"][0].update(email=marker))
    with pytest.raises(ProfileError) as raised:
        load_baseline(load_profile("local"), repo_root=root)
    assert (
        "personas[0].email: must be an e-mail address" in raised.value.report() and marker not in raised.value.report()
    )


def test_retention_never_removes_a_baseline_set():
    now = datetime.datetime(2026, 12, 2, tzinfo=datetime.timezone.utc)
    ids = [new_set_id(now - datetime.timedelta(days=days)) for days in range(10, 0, -1)]
    baseline = new_set_id(now - datetime.timedelta(days=30), label=BASELINE)
    sets = {set_id: {"complete": True, "in_use": False} for set_id in [baseline, *ids]}
    doomed = expired(sets, keep_last=2, keep_days=None, now=now)
    assert set_label(baseline) == BASELINE and set_label(ids[0]) == ""
    assert baseline not in doomed and doomed == sorted(ids[:-2])


def test_redis_checksums_follow_the_content_not_the_order_sets_come_back_in():
    first = [{"key": "k", "type": "set", "value": ["b", "a"], "ttl_ms": 5000}]
    second = [{"key": "k", "type": "set", "value": ["a", "b"], "ttl_ms": -1}]
    assert redis_part.checksums(first) == redis_part.checksums(second)
    changed = [{"key": "k", "type": "set", "value": ["a", "c"], "ttl_ms": -1}]
    assert redis_part.checksums(changed) != redis_part.checksums(second)
    as_list = [{"key": "k", "type": "list", "value": ["a", "b"], "ttl_ms": -1}]
    assert redis_part.checksums(as_list) != redis_part.checksums(second)


def test_redis_keys_travel_in_redis_protocol_inside_one_transaction():
    keys = [
        {"key": "quota", "type": "hash", "value": {"gpus": "4", "note": "two words\r\n"}, "ttl_ms": -1},
        {"key": "session", "type": "string", "value": "x", "ttl_ms": 9000},
    ]
    body = b"".join(redis_part._resp(*c) for c in (("MULTI",), ("FLUSHALL",)))
    for entry in keys:
        body += b"".join(redis_part._commands(entry))
    assert body.startswith(b"*1\r\n$5\r\nMULTI\r\n*1\r\n$8\r\nFLUSHALL\r\n")
    assert b"$4\r\nnote\r\n$11\r\ntwo words\r\n\r\n" in body
    assert b"*3\r\n$7\r\nPEXPIRE\r\n$7\r\nsession\r\n$4\r\n9000\r\n" in body


def test_the_checksum_lines_are_in_one_order_whatever_order_they_were_found_in():
    report = engine.ResetReport(
        checksums={
            "local-server": {
                "redis": {"b": "string 2", "a": "string 1"},
                "postgres": {"platform": {"public.z": "1 x", "public.a": "2 y"}},
            }
        }
    )
    assert engine.report_lines(report) == [
        "local-server postgres platform public.a 2 y",
        "local-server postgres platform public.z 1 x",
        "local-server redis a string 1",
        "local-server redis b string 2",
    ]
    again = engine.ResetReport(checksums=json.loads(json.dumps(report.checksums)[::1]))
    assert engine.report_lines(again) == engine.report_lines(report)


def test_a_baseline_captured_with_other_checksums_is_refused_until_captured_again():
    class Snapshots:
        directory = "/var/lib/gpuaas/demo-baseline"

        def index(self):
            return {"checksums": {}, "checksums_version": engine.CHECKSUMS_VERSION - 1}

    target = engine.Target(load_profile("local"), load_profile("local").hosts[0], None, snapshots=Snapshots())
    with pytest.raises(engine.RestoreRefused, match="captured with checksums of another kind.*capture it again"):
        engine._index(target)
