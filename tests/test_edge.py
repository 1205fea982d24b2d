"""roles/edge with the official cloudflare SDK against a local fake of Cloudflare's v4 API
(tests/doubles/cloudflare_api.py): plan, apply, ownership, limits, conflicts, lost answers and errors."""

from __future__ import annotations

import json
import os
import subprocess

import cloudflare
import pytest
import yaml

from gpuaas.profile import REPO_ROOT, load_profile, parse_profile
from roles.edge.cloudflare_api import EdgeError, apply, client, live_records, set_ssl_mode, zone_id
from roles.edge.deploy import on_conflict
from roles.edge.dns import over_limit, owner_comment, plan
from roles.edge.origin import issue_certificate, revoke_certificate
from tests.doubles.cloudflare_api import FakeCloudflare

TOKEN = "cf-test-token-value-0123456789"
TOKEN_ENV = "GPUAAS_STAGING_CLOUDFLARE_TOKEN"
BATCH = "POST /client/v4/zones/zone-1/dns_records/batch"


@pytest.fixture
def fake(monkeypatch):
    server = FakeCloudflare(TOKEN, "staging.gpuaas.example.com")
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", server.base_url)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    yield server
    server.close()


def converge(profile, api=None):
    api = api or client(profile)
    zone = zone_id(api, profile)
    planned = plan(profile, live_records(api, profile, zone))
    if not planned.empty():
        apply(api, profile, zone, planned)
    return planned


def planned_now(profile):
    api = client(profile)
    zone = zone_id(api, profile)
    return api, zone, plan(profile, live_records(api, profile, zone))


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


def with_cnames(raw) -> dict:
    raw["dns"]["records"] += [
        {"name": "docs.staging.gpuaas.example.com", "type": "CNAME", "target": "portal.staging.gpuaas.example.com"},
        {"name": "mail.staging.gpuaas.example.com", "type": "CNAME", "target": "portal.staging.gpuaas.example.com"},
    ]
    return raw


def test_the_fake_refuses_a_cname_beside_a_txt_record_as_cloudflare_does(fake):
    fake.add_record("docs.staging.gpuaas.example.com", "TXT", "v=verification")
    staging = load_profile("staging")
    api = client(staging)
    with pytest.raises(cloudflare.BadRequestError) as refused:
        api.dns.records.create(
            zone_id="zone-1",
            name="docs.staging.gpuaas.example.com",
            type="CNAME",
            content="portal.staging.gpuaas.example.com",
        )
    assert refused.value.body["errors"][0]["code"] == 81053


def test_a_cname_over_a_foreign_txt_or_mx_record_is_a_conflict_and_the_rest_still_applies(fake, raw):
    txt = fake.add_record("docs.staging.gpuaas.example.com", "TXT", "v=verification")
    mx = fake.add_record("mail.staging.gpuaas.example.com", "MX", "mx.example.net")
    profile = parse_profile(with_cnames(raw), "staging.yml")
    planned = converge(profile)
    assert sorted(planned.conflicts) == [
        "CNAME docs.staging.gpuaas.example.com is held by a record this environment does not own "
        "(TXT v=verification); left alone",
        "CNAME mail.staging.gpuaas.example.com is held by a record this environment does not own "
        "(MX mx.example.net); left alone",
    ]
    # The four A records went through in the same run; the foreign records are as they were.
    assert sorted(r["name"] for r in fake.records.values() if r["comment"] == owner_comment(profile)) == sorted(
        str(r.name) for r in profile.dns.records if r.type == "A"
    )
    assert fake.records[txt["id"]]["content"] == "v=verification" and fake.records[mx["id"]]["type"] == "MX"
    assert not any(r["type"] == "CNAME" for r in fake.records.values())
    again = converge(profile)
    assert again.empty() and len(again.conflicts) == 2


def test_on_conflict_comes_from_the_profile_and_the_environment_overrides_it(raw, monkeypatch):
    monkeypatch.delenv("GPUAAS_DNS_ON_CONFLICT", raising=False)
    assert on_conflict(parse_profile(raw, "staging.yml")) == "report"
    raw["dns"]["on_conflict"] = "fail"
    strict = parse_profile(raw, "staging.yml")
    assert on_conflict(strict) == "fail"
    monkeypatch.setenv("GPUAAS_DNS_ON_CONFLICT", "report")
    assert on_conflict(strict) == "report"
    monkeypatch.setenv("GPUAAS_DNS_ON_CONFLICT", "loud")
    with pytest.raises(EdgeError, match="GPUAAS_DNS_ON_CONFLICT='loud': must be `report` or `fail`"):
        on_conflict(strict)


def test_a_non_canonical_ipv6_literal_converges_and_a_second_run_changes_nothing(fake, raw):
    raw["dns"]["records"].append({"name": "v6.staging.gpuaas.example.com", "type": "AAAA", "target": "2001:db8::10"})
    profile = parse_profile(raw, "staging.yml")
    # The same address written the long way, upper case (validation may refuse it; the plan must not
    # depend on that to converge).
    records = [*profile.dns.records[:-1], profile.dns.records[-1].model_copy(update={"target": "2001:DB8:0:0::0010"})]
    profile = profile.model_copy(update={"dns": profile.dns.model_copy(update={"records": records})})
    first = converge(profile)
    assert [r.content for r in first.create if r.type == "AAAA"] == ["2001:db8::10"]
    assert [r["content"] for r in fake.records.values() if r["type"] == "AAAA"] == ["2001:db8::10"]
    second = converge(profile)
    assert second.empty() and len(second.unchanged) == 5


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


def test_a_wrong_token_9109_is_named_an_invalid_token_without_the_token(fake, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "not-the-token")
    staging = load_profile("staging")
    with pytest.raises(EdgeError) as caught:
        zone_id(client(staging), staging)
    assert str(caught.value) == (
        "Cloudflare, zone staging.gpuaas.example.com, looking up the zone: Cloudflare does not accept the API token "
        "(dns.api_token, secret:cloudflare_api_token) (403: 9109 Invalid access token): it is wrong, expired, "
        "revoked or not allowed from this address; nothing was changed"
    )
    assert "not-the-token" not in str(caught.value) and "permission" not in str(caught.value)


def test_a_wrong_token_answered_401_is_an_invalid_token_too(fake, monkeypatch):
    fake.token_status = 401
    monkeypatch.setenv(TOKEN_ENV, "not-the-token")
    staging = load_profile("staging")
    with pytest.raises(EdgeError) as caught:
        zone_id(client(staging), staging)
    assert (
        "does not accept the API token (dns.api_token, secret:cloudflare_api_token) (401: 10000 Authentication "
        "error)" in str(caught.value)
    )


def test_a_token_without_the_permission_is_named_so_and_changes_nothing(fake):
    fake.read_only = True
    staging = load_profile("staging")
    with pytest.raises(EdgeError) as caught:
        converge(staging)
    message = str(caught.value)
    assert (
        "the API token (dns.api_token, secret:cloudflare_api_token) is valid but lacks the permission for "
        "this (403: 10000 Authentication error)" in message
    )
    assert "does not accept" not in message and TOKEN not in message
    assert fake.records == {}


def test_an_unset_token_variable_is_named_before_any_request(fake, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV)
    staging = load_profile("staging")
    with pytest.raises(EdgeError) as caught:
        client(staging)
    assert str(caught.value) == (
        "Cloudflare, zone staging.gpuaas.example.com: the API token (dns.api_token, secret:cloudflare_api_token) "
        "cannot be read: inventories/staging.yml: secrets.cloudflare_api_token: environment variable "
        f"{TOKEN_ENV} is not set; nothing was sent to Cloudflare"
    )
    assert fake.requests == []


def test_a_refused_batch_applies_nothing(fake):
    staging = load_profile("staging")
    api, zone, planned = planned_now(staging)
    # Someone creates one of the names between plan and apply: the batch fails whole.
    fake.add_record("id.staging.gpuaas.example.com", "A", "10.20.0.10")
    with pytest.raises(
        EdgeError,
        match="in one batch: refused \\(400: 81058 An identical record already exists.\\); none of it was applied",
    ):
        apply(api, staging, zone, planned)
    assert len(fake.records) == 1


def test_a_batch_answered_5xx_after_it_was_applied_is_reported_applied_and_never_sent_again(fake):
    staging = load_profile("staging")
    api, zone, planned = planned_now(staging)
    fake.fail_next("POST", "dns_records/batch", "5xx-after-apply")
    note = apply(api, staging, zone, planned)
    assert note == (
        "Cloudflare, zone staging.gpuaas.example.com, applying 4 creates, 0 updates and 0 deletes in one batch: "
        "Cloudflare failed (502), but reading the zone back shows the whole batch applied (4 changes)"
    )
    assert fake.requests.count(BATCH) == 1 and len(fake.records) == 4
    assert converge(staging).empty()


def test_a_batch_that_timed_out_after_it_was_applied_is_reported_applied_and_never_sent_again(fake):
    staging = load_profile("staging")
    api = client(staging, timeout=1.0)
    zone = zone_id(api, staging)
    planned = plan(staging, live_records(api, staging, zone))
    fake.fail_next("POST", "dns_records/batch", "timeout-after-apply")
    note = apply(api, staging, zone, planned)
    assert note is not None and note.endswith(
        "in one batch: the request timed out, but reading the zone back shows the whole batch applied (4 changes)"
    )
    assert fake.requests.count(BATCH) == 1 and len(fake.records) == 4
    assert converge(staging).empty()


def test_a_batch_answered_5xx_before_it_was_applied_is_reported_not_applied(fake, raw):
    staging = load_profile("staging")
    converge(staging)
    raw["hosts"][0]["address"] = "10.20.0.15"
    moved = parse_profile(raw, "staging.yml")
    api, zone, planned = planned_now(moved)
    fake.fail_next("POST", "dns_records/batch", "5xx-before-apply")
    with pytest.raises(EdgeError) as caught:
        apply(api, moved, zone, planned)
    message = str(caught.value)
    assert (
        "in one batch: Cloudflare failed (502); reading the zone back shows it was not applied (not applied: ~ "
        "A portal.staging.gpuaas.example.com: 10.20.0.10 (proxied) -> 10.20.0.15 (proxied);" in message
    )
    assert "; ~ A api.staging.gpuaas.example.com: 10.20.0.10 -> 10.20.0.15;" in message
    assert message.endswith("a new run plans it again") and "whole batch applied" not in message
    assert fake.requests.count(BATCH) == 2  # the first run's and this one, sent once
    assert {r["content"] for r in fake.records.values()} == {"10.20.0.10"}


def test_a_batch_refused_429_is_sent_again_after_retry_after(fake):
    staging = load_profile("staging")
    api, zone, planned = planned_now(staging)
    fake.rate_limited = 1
    assert apply(api, staging, zone, planned) is None
    assert fake.requests.count(BATCH) == 2 and len(fake.records) == 4


def edge(*flags: str, env: dict, inventory: str = "inventories/staging.py") -> subprocess.CompletedProcess:
    command = ["pyinfra", "-y", *flags, inventory, "deploys/edge.py", "--limit", "@local"]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=120, env=env)


def staging_variant(directory, raw) -> str:
    """A pyinfra inventory of `raw` written as staging.yml in `directory`."""
    (directory / "staging.yml").write_text(yaml.safe_dump(raw, sort_keys=False))
    path = directory / "staging.py"
    loader = f"load_groups({str(directory / 'staging.yml')!r})"
    path.write_text(f"from gpuaas.inventory import load_groups\n\nglobals().update({loader})\n")
    return str(path)


def test_the_deploy_plans_in_dry_run_applies_once_and_never_prints_the_token(fake):
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


def test_a_missing_token_stops_before_any_request_without_a_traceback(fake):
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV} | {"CLOUDFLARE_BASE_URL": fake.base_url}
    result = edge(env=env)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "the API token (dns.api_token, secret:cloudflare_api_token) cannot be read" in output
    assert f"environment variable {TOKEN_ENV} is not set; nothing was sent to Cloudflare" in output
    assert "Traceback" not in output
    assert fake.requests == []


def test_the_deploy_reports_a_batch_applied_despite_a_5xx_and_carries_on(fake):
    env = {**os.environ, "CLOUDFLARE_BASE_URL": fake.base_url, TOKEN_ENV: TOKEN}
    fake.fail_next("POST", "dns_records/batch", "5xx-after-apply")
    applied = edge(env=env)
    output = applied.stdout + applied.stderr
    assert applied.returncode == 0, output[-2000:]
    assert "Cloudflare failed (502), but reading the zone back shows the whole batch applied (4 changes)" in output
    assert "not applied" not in output and "none of it was applied" not in output
    assert fake.requests.count(BATCH) == 1 and len(fake.records) == 4 and fake.ssl == "strict"
    again = edge("--json", env=env)
    assert json.loads(again.stdout)["results"]["totals"]["success"] == 0


def test_conflicts_fail_the_run_with_on_conflict_fail_once_the_rest_is_applied(fake, raw, tmp_path):
    fake.add_record("docs.staging.gpuaas.example.com", "TXT", "v=verification")
    inventory = staging_variant(tmp_path, with_cnames(raw))
    env = {**os.environ, "CLOUDFLARE_BASE_URL": fake.base_url, TOKEN_ENV: TOKEN}
    env.pop("GPUAAS_DNS_ON_CONFLICT", None)
    reported = edge(env=env, inventory=inventory)
    assert reported.returncode == 0, (reported.stdout + reported.stderr)[-2000:]
    assert "! CNAME docs.staging.gpuaas.example.com is held by a record" in reported.stdout + reported.stderr
    # The A records and the CNAME whose name was free are in; the conflicting one is not.
    assert sorted(r["type"] for r in fake.records.values()) == ["A", "A", "A", "A", "CNAME", "TXT"]

    failed = edge(env={**env, "GPUAAS_DNS_ON_CONFLICT": "fail"}, inventory=inventory)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "1 DNS conflict and on_conflict is fail" in output and "Traceback" not in output
    assert fake.ssl == "strict"

    raw["dns"]["on_conflict"] = "fail"
    from_profile = edge(env=env, inventory=staging_variant(tmp_path, raw))
    assert from_profile.returncode != 0
    assert "1 DNS conflict and on_conflict is fail" in from_profile.stdout + from_profile.stderr


def certificate_request(name: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM).decode()


PORTAL = "portal.staging.gpuaas.example.com"


@pytest.mark.parametrize("fault", ["5xx-after-apply", "timeout-after-apply"])
def test_an_origin_certificate_issued_despite_a_lost_answer_is_found_and_not_requested_again(fake, raw, fault):
    raw["dns"]["origin_certificates"] = {"hosts_group": "rke2_servers"}
    profile = parse_profile(raw, "staging.yml")
    fake.fail_next("POST", "/certificates", fault)
    api = client(profile, timeout=1.0)
    issued = issue_certificate(api, profile, profile.dns.origin_certificates, certificate_request(PORTAL), [PORTAL])
    assert list(fake.certificates) == [issued.id] and "BEGIN CERTIFICATE" in issued.certificate
    assert fake.requests.count("POST /client/v4/certificates") == 1


def test_an_origin_certificate_not_issued_before_a_5xx_is_reported_not_issued(fake, raw):
    raw["dns"]["origin_certificates"] = {"hosts_group": "rke2_servers"}
    profile = parse_profile(raw, "staging.yml")
    fake.fail_next("POST", "/certificates", "5xx-before-apply")
    with pytest.raises(
        EdgeError,
        match="requesting an Origin CA certificate: Cloudflare failed \\(502\\); the zone's "
        "certificates read back hold none for this request: not issued",
    ):
        issue_certificate(
            client(profile), profile, profile.dns.origin_certificates, certificate_request(PORTAL), [PORTAL]
        )
    assert fake.certificates == {} and fake.requests.count("POST /client/v4/certificates") == 1


def test_a_revocation_applied_despite_a_5xx_is_reported_applied_and_not_sent_again(fake, raw):
    raw["dns"]["origin_certificates"] = {"hosts_group": "rke2_servers"}
    profile = parse_profile(raw, "staging.yml")
    api = client(profile)
    issued = issue_certificate(api, profile, profile.dns.origin_certificates, certificate_request(PORTAL), [PORTAL])
    fake.fail_next("DELETE", f"/certificates/{issued.id}", "5xx-after-apply")
    revoke_certificate(api, profile, issued.id)
    assert fake.certificates[issued.id]["revoked_at"]
    assert fake.requests.count(f"DELETE /client/v4/certificates/{issued.id}") == 1


def test_the_ssl_mode_set_despite_a_5xx_is_reported_applied_and_not_sent_again(fake):
    staging = load_profile("staging")
    api = client(staging)
    fake.fail_next("PATCH", "settings/ssl", "5xx-after-apply")
    note = set_ssl_mode(api, staging, zone_id(api, staging), "strict")
    assert note is not None and note.endswith("Cloudflare failed (502), but the zone read back shows strict: applied")
    assert fake.ssl == "strict" and fake.requests.count("PATCH /client/v4/zones/zone-1/settings/ssl") == 1


def test_a_batch_read_back_partly_applied_names_each_record(fake):
    staging = load_profile("staging")
    api, zone, planned = planned_now(staging)
    # Someone else's change lands between the batch and the read back: only one record is there.
    made = planned.create[0]
    fake.add_record(made.name, made.type, made.content, comment=made.comment, proxied=made.proxied)
    fake.fail_next("POST", "dns_records/batch", "5xx-before-apply")
    with pytest.raises(EdgeError) as caught:
        apply(api, staging, zone, planned)
    message = str(caught.value)
    assert (
        f"reading the zone back shows it partly applied (applied: + A {made.name} -> {made.content} (proxied); "
        "not applied: + A api.staging.gpuaas.example.com -> 10.20.0.10; " in message
    )


# --- the edge's part of the evidence packet ----------------------------------------------------------


def test_the_evidence_reads_each_name_the_tls_mode_and_the_certificates_expiry(fake, raw):
    from roles.edge.readback import evidence_items

    raw["dns"]["origin_certificates"] = {"hosts_group": "rke2_servers", "renew_days": 30}
    profile = parse_profile(raw, "staging.yml")
    converge(profile)
    api = client(profile)
    zone = zone_id(api, profile)
    set_ssl_mode(api, profile, zone, "strict")
    issue_certificate(api, profile, profile.dns.origin_certificates, certificate_request(PORTAL), [PORTAL])
    items = {item["name"]: item for item in evidence_items(profile)}
    assert {name for name, item in items.items() if item["status"] == "ok"} == set(items), items
    assert items[PORTAL]["message"] == "A 10.20.0.10 (proxied)"
    assert items["SSL/TLS mode"]["message"] == "strict"
    assert items[f"Origin CA certificate {PORTAL}"]["message"].endswith("(in 5474 days)")

    # What the zone serves now differs from the profile, and a 7-day certificate is inside renew_days.
    (portal,) = [r for r in fake.records.values() if r["name"] == PORTAL]
    portal["content"] = "10.20.0.99"
    fake.ssl = "flexible"
    short = issue_certificate(
        api,
        profile,
        profile.dns.origin_certificates.model_copy(update={"validity_days": 7}),
        certificate_request("api.staging.gpuaas.example.com"),
        ["api.staging.gpuaas.example.com"],
    )
    items = {item["name"]: item for item in evidence_items(profile)}
    assert items[PORTAL]["status"] == "drift" and "serves A 10.20.0.99 (proxied)" in items[PORTAL]["message"]
    assert items["SSL/TLS mode"] == {
        **items["SSL/TLS mode"],
        "status": "drift",
        "message": "flexible; the profile wants strict",
    }
    assert items["Origin CA certificate api.staging.gpuaas.example.com"]["status"] == "drift", short.id
    # The other names and the first certificate are still as the profile wants them.
    still = {name for name, item in items.items() if item["status"] == "ok"}
    assert still == {str(r.name) for r in profile.dns.records} - {PORTAL} | {f"Origin CA certificate {PORTAL}"}


def test_the_evidence_of_an_unreadable_zone_is_one_blocked_item_without_the_token(fake, raw, monkeypatch):
    from roles.edge.readback import evidence_items

    monkeypatch.setenv(TOKEN_ENV, "another-token-refused-by-the-fake")
    (item,) = evidence_items(parse_profile(raw, "staging.yml"))
    assert item["status"] == "blocked" and item["name"] == "zone staging.gpuaas.example.com"
    assert "secret:cloudflare_api_token" in item["message"] and "another-token" not in item["message"]
