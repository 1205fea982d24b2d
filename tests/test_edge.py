"""roles/edge with the official cloudflare SDK against a local fake of Cloudflare's v4 API
(tests/doubles/cloudflare_api.py): plan, apply, ownership, limits and errors."""

from __future__ import annotations

import json
import subprocess

import pytest

from gpuaas.profile import REPO_ROOT, load_profile, parse_profile
from roles.edge.cloudflare_api import EdgeError, apply, client, live_records, zone_id
from roles.edge.dns import over_limit, owner_comment, plan
from tests.doubles.cloudflare_api import FakeCloudflare

TOKEN = "cf-test-token-value-0123456789"
TOKEN_ENV = "GPUAAS_STAGING_CLOUDFLARE_TOKEN"


@pytest.fixture
def fake(monkeypatch):
    server = FakeCloudflare(TOKEN, "staging.gpuaas.example.com")
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", server.base_url)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    yield server
    server.close()


def converge(profile):
    api = client(profile)
    zone = zone_id(api, profile)
    planned = plan(profile, live_records(api, profile, zone))
    if not planned.empty():
        apply(api, profile, zone, planned)
    return planned


def test_first_apply_creates_every_record_owned_and_a_rerun_plans_nothing(fake):
    staging = load_profile("staging")
    first = converge(staging)
    assert sorted(r.name for r in first.create) == sorted(r.name for r in staging.dns.records)
    records = list(fake.records.values())
    assert {r["content"] for r in records} == {"10.20.0.10"}
    assert all(r["comment"] == owner_comment(staging) for r in records)
    assert {r["name"]: r["proxied"] for r in records}["api.staging.gpuaas.example.com"] is False
    assert converge(staging).empty()


def test_a_changed_target_is_one_update(fake, raw):
    converge(load_profile("staging"))
    raw["hosts"][0]["address"] = "10.20.0.15"
    moved = parse_profile(raw, "staging.yml")
    planned = converge(moved)
    assert len(planned.update) == 4 and not planned.create and not planned.delete
    assert {r["content"] for r in fake.records.values()} == {"10.20.0.15"}


def test_a_foreign_record_on_a_desired_name_is_a_conflict_and_left_alone(fake):
    foreign = fake.add_record("portal.staging.gpuaas.example.com", "CNAME", "someone-else.example.net")
    planned = converge(load_profile("staging"))
    assert any("portal.staging.gpuaas.example.com is held by a record" in c for c in planned.conflicts)
    assert fake.records[foreign["id"]]["content"] == "someone-else.example.net"
    assert len(planned.create) == 3


def test_owned_records_no_longer_wanted_are_deleted_but_not_past_the_limit(fake, raw):
    staging = load_profile("staging")
    converge(staging)
    raw["dns"]["records"] = raw["dns"]["records"][:1]
    shrunk = parse_profile(raw, "staging.yml")
    planned = plan(shrunk, live_records(client(shrunk), shrunk, zone_id(client(shrunk), shrunk)))
    assert len(planned.delete) == 3 and over_limit(planned, shrunk.dns.max_change_share)
    raw["dns"]["max_change_share"] = 0.8
    assert not over_limit(planned, parse_profile(raw, "staging.yml").dns.max_change_share)


def test_listing_follows_every_page(fake):
    for index in range(230):
        fake.add_record(f"host{index}.staging.gpuaas.example.com", "A", f"10.99.{index // 250}.{index % 250}")
    staging = load_profile("staging")
    assert len(live_records(client(staging), staging, zone_id(client(staging), staging))) == 230
    assert sum(1 for request in fake.requests if request.startswith("GET /client/v4/zones/zone-1/dns_records")) == 4


def test_429_is_retried_as_retry_after_asks(fake):
    fake.rate_limited = 2
    staging = load_profile("staging")
    assert len(converge(staging).create) == 4


def test_a_wrong_token_is_a_clear_error_without_the_token(fake, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "not-the-token")
    staging = load_profile("staging")
    with pytest.raises(EdgeError, match="the API token was refused \\(401\\)") as caught:
        zone_id(client(staging), staging)
    assert "not-the-token" not in str(caught.value)


def test_a_failed_batch_applies_nothing(fake):
    staging = load_profile("staging")
    api = client(staging)
    zone = zone_id(api, staging)
    planned = plan(staging, live_records(api, staging, zone))
    # Someone creates one of the names between plan and apply: the batch fails whole.
    fake.add_record("id.staging.gpuaas.example.com", "A", "10.20.0.10")
    with pytest.raises(EdgeError, match="in one batch \\(none was applied\\)"):
        apply(api, staging, zone, planned)
    assert len(fake.records) == 1


def edge(*flags: str, env: dict) -> subprocess.CompletedProcess:
    command = ["pyinfra", "-y", *flags, "inventories/staging.py", "deploys/edge.py", "--limit", "@local"]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=120, env=env)


def test_the_deploy_plans_in_dry_run_applies_once_and_never_prints_the_token(fake):
    import os

    env = {**os.environ, "CLOUDFLARE_BASE_URL": fake.base_url, TOKEN_ENV: TOKEN}
    dry = edge("--dry", env=env)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "+ A portal.staging.gpuaas.example.com -> 10.20.0.10 (proxied)" in dry.stdout + dry.stderr
    assert not fake.records and fake.ssl == "full"
    recorded = json.loads((REPO_ROOT / "build" / "staging" / "dns-plan.json").read_text())
    assert len(recorded["create"]) == 4
    applied = edge("-vvv", env=env)
    assert applied.returncode == 0, applied.stderr[-2000:]
    assert len(fake.records) == 4 and fake.ssl == "strict"
    again = edge("--json", env=env)
    assert json.loads(again.stdout)["results"]["totals"]["success"] == 0
    evidence = json.loads((REPO_ROOT / "build" / "staging" / "evidence" / "edge.json").read_text())
    assert evidence["ssl_mode"] == "strict" and len(evidence["records"]) == 4
    assert all(r["owned"] and r["content"] == "10.20.0.10" for r in evidence["records"])
    for result in (dry, applied, again):
        assert TOKEN not in result.stdout + result.stderr


def test_a_missing_token_stops_before_any_request(fake):
    import os

    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV} | {"CLOUDFLARE_BASE_URL": fake.base_url}
    result = edge(env=env)
    assert result.returncode != 0
    assert f"environment variable {TOKEN_ENV} is not set" in result.stdout + result.stderr
    assert fake.requests == []
