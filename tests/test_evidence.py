"""The evidence packet offline: its schema, the signature round trip, the promotion check and the drift
gate's lines, with packets made here and signed with keys made here."""

from __future__ import annotations

import base64
import datetime
import json
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gpuaas.evidence import promote, render, rollback, sign
from gpuaas.evidence.packet import (
    SCHEMA_PATH,
    ArtifactReadback,
    Inputs,
    Item,
    Layer,
    Packet,
    ProfileReadback,
    Source,
    Status,
    schema_text,
    validate,
)
from gpuaas.profile import REPO_ROOT, load_profile

NOW = datetime.datetime(2026, 12, 2, 22, 0, tzinfo=datetime.timezone.utc)
SHA = "1" * 40


def staging_packet(prod, **changes) -> Packet:
    """A green staging packet that proves exactly what prod pins, read an hour before NOW."""
    artifacts = [
        ArtifactReadback(
            name=name,
            version=pin.version,
            sha256=pin.sha256,
            source=pin.wheel or str(pin.url),
            program_sha256=None,
            installed=[],
            status=Status.OK,
            message="installed, sha256 matches",
        )
        for name, pin in sorted(prod.artifacts.items())
    ]
    fields = dict(
        schema="gpuaas.evidence/v1",
        environment="staging",
        read_at="2026-12-02T21:00:00Z",
        status=Status.OK,
        source=Source(sha=SHA, dirty=False),
        profile=ProfileReadback(name="staging", source="inventories/staging.yml", digest="2" * 64),
        inputs=Inputs(uat_package="https://uat.example.com/p/41", portal_build="portal-812"),
        hosts=[],
        artifacts=artifacts,
        items=[Item(layer=Layer.DATA_SERVICES, name="PostgreSQL", host="s1", status=Status.OK, message="15.18")],
        blocked=[],
    )
    return Packet(**{**fields, **changes})


@pytest.fixture
def keys(tmp_path):
    """Staging's signing key, and its public half where prod's profile is told to find it."""
    key = Ed25519PrivateKey.generate()
    public = tmp_path / "staging-evidence.pub"
    public.write_text(sign.public_key_pem(key.public_key()))
    return key, public


@pytest.fixture
def prod(keys):
    _, public = keys
    profile = load_profile("prod")
    evidence = profile.evidence.model_copy(update={"trusted_keys": {"staging": str(public)}})
    return profile.model_copy(update={"evidence": evidence})


def signed(tmp_path, packet: Packet, key, name: str = "20261202T210000Z") -> object:
    path = tmp_path / f"{name}.dsse.json"
    path.write_text(json.dumps(sign.sign(packet, key)))
    return path


def tampered(path, change) -> None:
    envelope = json.loads(path.read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    change(statement)
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    path.write_text(json.dumps(envelope))


# --- schema ------------------------------------------------------------------------------------------


def test_the_schema_kept_in_the_repository_is_the_packet_models():
    assert SCHEMA_PATH.read_text() == schema_text()
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["$id"].endswith("/evidence-packet/v1") and schema["properties"]["schema"]["const"]


def test_a_packet_validates_and_a_broken_one_is_named_field_by_field(prod):
    document = staging_packet(prod).model_dump(mode="json", by_alias=True)
    assert validate(document) == []
    document["items"][0]["status"] = "green"
    del document["source"]["dirty"]
    problems = validate(document)
    assert any(p.startswith("items.0.status: ") for p in problems), problems
    assert any(p.startswith("source: ") and "dirty" in p for p in problems), problems


# --- signing -----------------------------------------------------------------------------------------


def test_signature_round_trip_names_the_signer_and_what_it_covers(tmp_path, prod, keys):
    key, public = keys
    packet = staging_packet(prod)
    path = signed(tmp_path, packet, key)
    verified = sign.verify(json.loads(path.read_text()), sign.load_public_key(public.read_bytes(), "k"), "p")
    assert verified.packet == packet
    assert verified.keyid == sign.keyid_of(key.public_key())
    assert verified.subjects[0] == {"name": "gpuaas-collection", "digest": {"gitCommit": SHA}}
    assert {s["name"]: s["digest"]["sha256"] for s in verified.subjects[1:]} == {
        name: pin.sha256 for name, pin in prod.artifacts.items()
    }
    envelope = json.loads(path.read_text())
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert json.loads(base64.b64decode(envelope["payload"]))["_type"] == "https://in-toto.io/Statement/v1"


@pytest.mark.parametrize(
    "change, told",
    [
        (lambda s: s["predicate"].update(status="ok", environment="prod"), "does not verify"),
        (lambda s: s["subject"][1]["digest"].update(sha256="0" * 64), "does not verify"),
    ],
)
def test_a_tampered_packet_is_refused(tmp_path, prod, keys, change, told):
    key, public = keys
    path = signed(tmp_path, staging_packet(prod), key)
    tampered(path, change)
    with pytest.raises(sign.EvidenceError, match=told):
        sign.verify(json.loads(path.read_text()), sign.load_public_key(public.read_bytes(), "k"), "p")


def test_a_packet_signed_by_another_key_or_by_none_is_refused(tmp_path, prod, keys):
    _, public = keys
    trusted = sign.load_public_key(public.read_bytes(), "k")
    path = signed(tmp_path, staging_packet(prod), Ed25519PrivateKey.generate())
    with pytest.raises(sign.EvidenceError, match="does not verify"):
        sign.verify(json.loads(path.read_text()), trusted, "p")
    unsigned = {**json.loads(path.read_text()), "signatures": []}
    with pytest.raises(sign.EvidenceError, match="no signature"):
        sign.verify(unsigned, trusted, "p")


def test_the_signing_key_is_a_pem_or_derived_from_any_secret_and_a_bad_pem_is_named(tmp_path, monkeypatch):
    profile = load_profile("staging")
    monkeypatch.setattr(sign, "resolve", lambda _p, _r: type("S", (), {"reveal": lambda self: "some secret text"})())
    derived = sign.private_key(profile)
    assert sign.keyid_of(derived.public_key()) == sign.keyid_of(sign.private_key(profile).public_key())
    pem = Ed25519PrivateKey.generate()
    text = pem.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    monkeypatch.setattr(sign, "resolve", lambda _p, _r: type("S", (), {"reveal": lambda self: text})())
    assert sign.keyid_of(sign.private_key(profile).public_key()) == sign.keyid_of(pem.public_key())
    broken = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"
    monkeypatch.setattr(sign, "resolve", lambda _p, _r: type("S", (), {"reveal": lambda self: broken})())
    with pytest.raises(sign.EvidenceError) as refused:
        sign.private_key(profile)
    assert "evidence.signing_key" in str(refused.value) and "not a key" not in str(refused.value)


# --- promotion ---------------------------------------------------------------------------------------


def prod_file(tmp_path, trusted_keys: dict) -> str:
    """prod's profile as shipped, with these `evidence.trusted_keys`, written as a file."""
    from tests.conftest import write_profile

    data = json.loads(json.dumps(load_profile("prod").model_dump(mode="json", by_alias=True, exclude={"source"})))
    data["evidence"]["trusted_keys"] = trusted_keys
    return str(write_profile(tmp_path, data, env="prod"))


def test_identical_pins_from_the_same_commit_pass(tmp_path, prod, keys):
    path = signed(tmp_path, staging_packet(prod), keys[0])
    outcome = promote.check(prod, "staging", SHA, [path], now=NOW)
    assert outcome.passed, outcome.markdown()
    text = outcome.markdown()
    assert "may be promoted" in text and text.count("✅") == len(prod.artifacts) + 1


def test_one_changed_sha256_fails_naming_that_artifact(tmp_path, prod, keys):
    name = sorted(prod.artifacts)[0]
    packet = staging_packet(prod)
    changed = [a.model_copy(update={"sha256": "f" * 64}) if a.name == name else a for a in packet.artifacts]
    path = signed(tmp_path, packet.model_copy(update={"artifacts": changed}), keys[0])
    outcome = promote.check(prod, "staging", SHA, [path], now=NOW)
    assert not outcome.passed
    assert len(outcome.differences) == 1 and outcome.differences[0].startswith(f"{name}: prod pins sha256 ")
    assert "ffffffffffff" in outcome.differences[0]


def test_every_unproven_artifact_and_the_source_are_listed(tmp_path, prod, keys):
    packet = staging_packet(prod)
    first, second = sorted(prod.artifacts)[:2]
    kept = [
        a.model_copy(update={"status": Status.DRIFT, "message": "differs"}) if a.name == second else a
        for a in packet.artifacts
        if a.name != first
    ]
    path = signed(tmp_path, packet.model_copy(update={"artifacts": kept}), keys[0])
    outcome = promote.check(prod, "staging", "9" * 40, [path], now=NOW)
    joined = "\n".join(outcome.differences)
    assert f"{first}: prod pins" in joined and "does not have it" in joined
    assert f"{second}: staging read it back as drift" in joined
    assert "source: prod would be deployed from `999999999999`" in joined


@pytest.mark.parametrize(
    "make, told",
    [
        (lambda tmp, prod, key: [], "no signed packet of staging"),
        (lambda tmp, prod, key: [signed(tmp, staging_packet(prod), Ed25519PrivateKey.generate())], "does not verify"),
        (
            lambda tmp, prod, key: (
                [tmp / "x.dsse.json"]
                if (tmp / "x.dsse.json").write_text(
                    json.dumps({**sign.sign(staging_packet(prod), key), "signatures": []})
                )
                else []
            ),
            "no signature",
        ),
        (
            lambda tmp, prod, key: [signed(tmp, staging_packet(prod, read_at="2026-11-01T21:00:00Z"), key)],
            "is stale: read 31 days ago",
        ),
        (
            lambda tmp, prod, key: [signed(tmp, staging_packet(prod, source=Source(sha=SHA, dirty=True)), key)],
            "dirty tree",
        ),
        (
            lambda tmp, prod, key: [signed(tmp, staging_packet(prod, status=Status.DRIFT), key)],
            "no verified green packet of staging",
        ),
    ],
    ids=["missing", "signed-by-another-key", "unsigned", "stale", "dirty", "not-green"],
)
def test_a_missing_unsigned_tampered_stale_or_red_staging_packet_fails_clearly(tmp_path, prod, keys, make, told):
    outcome = promote.check(prod, "staging", SHA, make(tmp_path, prod, keys[0]), now=NOW)
    assert not outcome.passed
    assert told in "\n".join(outcome.differences), outcome.differences


def test_the_newest_green_packet_is_taken_and_a_tampered_newer_one_refuses(tmp_path, prod, keys):
    older = signed(tmp_path, staging_packet(prod), keys[0], "20261202T200000Z")
    red = signed(tmp_path, staging_packet(prod, status=Status.FAILED), keys[0], "20261202T210000Z")
    outcome = promote.check(prod, "staging", SHA, [red, older], now=NOW)
    assert outcome.passed and outcome.chosen_path == older and "not green: passed over" in outcome.notes[0]
    tampered(red, lambda s: s["predicate"].update(status="ok"))
    assert not promote.check(prod, "staging", SHA, [red, older], now=NOW).passed


def test_the_promotion_comment_fits_a_pull_request(tmp_path, prod, keys):
    packet = staging_packet(prod)
    broken = [a.model_copy(update={"sha256": "e" * 64}) for a in packet.artifacts]
    path = signed(tmp_path, packet.model_copy(update={"artifacts": broken}), keys[0])
    text = promote.check(prod, "staging", "8" * 40, [path], now=NOW).markdown()
    # GitHub's comment limit is 65,536 characters; a reviewer reads it without scrolling far.
    assert len(text) < 4000 and len(text.splitlines()) < 2 * len(prod.artifacts) + 20
    assert text.startswith("### Promotion staging → prod: ❌ refused")


def test_a_profile_promoted_from_an_environment_must_trust_its_key(tmp_path):
    from gpuaas.errors import ProfileError

    with pytest.raises(ProfileError) as refused:
        load_profile(prod_file(tmp_path, {}))
    assert "evidence.promote_from" in refused.value.report()


# --- the rollback point ------------------------------------------------------------------------------


@pytest.fixture
def staging(keys, monkeypatch):
    """staging's profile, signing with the keys' private half."""
    monkeypatch.setattr(sign, "private_key", lambda _profile: keys[0])
    return load_profile("staging")


def test_the_rollback_point_is_the_newest_earlier_green_packet_its_own_key_verifies(tmp_path, prod, keys, staging):
    key, _ = keys
    proven = signed(tmp_path, staging_packet(prod, read_at="2026-11-30T10:00:00Z"), key, "20261130T100000Z")
    red = signed(tmp_path, staging_packet(prod, read_at="2026-12-01T10:00:00Z", status=Status.DRIFT), key, "20261201T1")
    foreign = signed(
        tmp_path, staging_packet(prod, read_at="2026-12-01T11:00:00Z"), Ed25519PrivateKey.generate(), "20261201T2"
    )
    later = signed(tmp_path, staging_packet(prod, read_at="2026-12-02T23:00:00Z"), key, "20261202T230000Z")
    now = staging_packet(prod, source=Source(sha="3" * 40, dirty=False))
    name = sorted(now.artifacts, key=lambda a: a.name)[0].name
    changed = [a.model_copy(update={"sha256": "9" * 64}) if a.name == name else a for a in now.artifacts]

    found = rollback.point(staging, now.read_at, now.source, changed, [later, foreign, red, proven])

    assert found is not None and found.packet == proven.name, found
    assert found.source_sha == SHA and found.artifacts[name] == prod.artifacts[name].sha256
    assert found.changed == [
        f"source {SHA[:12]} → {'3' * 12}",
        f"{name}: sha256 {prod.artifacts[name].sha256[:12]}… → {'9' * 12}… ({prod.artifacts[name].version})",
    ]
    shown = render.markdown(now.model_copy(update={"rollback": found}))
    assert f"Rolls back to `{proven.name}`" in shown and f"- {name}: sha256" in shown
    assert validate(now.model_copy(update={"rollback": found}).model_dump(mode="json", by_alias=True)) == []


def test_without_an_earlier_green_packet_there_is_nothing_to_roll_back_to(tmp_path, prod, keys, staging):
    key, _ = keys
    red = signed(tmp_path, staging_packet(prod, read_at="2026-12-01T10:00:00Z", status=Status.FAILED), key)
    packet = staging_packet(prod)
    assert rollback.point(staging, packet.read_at, packet.source, list(packet.artifacts), [red]) is None
    assert "nothing proven to roll back to" in render.markdown(packet)
    assert "nothing proven to roll back to" in render.html(packet)


# --- the command line --------------------------------------------------------------------------------


def gpuaas(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["gpuaas", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)


def test_the_verify_command_says_who_signed_and_what_is_covered_and_refuses_a_tampered_one(tmp_path, prod, keys):
    key, public = keys
    path = signed(tmp_path, staging_packet(prod), key)
    told = gpuaas("evidence", "verify", str(path), "--key", str(public))
    assert told.returncode == 0, told.stderr
    assert f"verified, signed by key {sign.keyid_of(key.public_key())}" in told.stdout
    assert f"covers source {SHA}" in told.stdout
    assert all(f"{name} sha256:{pin.sha256}" in told.stdout for name, pin in prod.artifacts.items())
    tampered(path, lambda s: s["predicate"].update(read_at="2026-12-02T21:30:00Z"))
    refused = gpuaas("evidence", "verify", str(path), "--key", str(public))
    assert refused.returncode == 1 and "does not verify" in refused.stderr and "Traceback" not in refused.stderr


def test_the_promote_command_passes_identical_pins_and_prints_the_comment(tmp_path, prod, keys, monkeypatch, capsys):
    from gpuaas import cli

    key, public = keys
    path = signed(tmp_path, staging_packet(prod, read_at=NOW.strftime("%Y-%m-%dT%H:%M:%SZ")), key)
    monkeypatch.setattr(cli, "source_sha", lambda: SHA)
    assert cli.main(["evidence", "promote", prod_file(tmp_path, {"staging": str(public)}), "--packet", str(path)]) == 0
    told = capsys.readouterr().out
    assert told.startswith("### Promotion staging → prod: ✅ may be promoted") and path.name in told
    monkeypatch.setattr(cli, "source_sha", lambda: "7" * 40)
    assert cli.main(["evidence", "promote", prod_file(tmp_path, {"staging": str(public)}), "--packet", str(path)]) == 1
    assert "source: prod would be deployed from `777777777777`" in capsys.readouterr().out


def test_the_promote_command_exits_non_zero_without_a_packet(tmp_path):
    told = gpuaas("evidence", "promote", "prod", "--packet", str(tmp_path / "none.dsse.json"))
    assert told.returncode == 1 and "refused" in told.stdout and "Traceback" not in told.stderr


def test_the_schema_command_finds_the_kept_schema_current():
    told = gpuaas("evidence", "schema", "--check")
    assert told.returncode == 0 and "current" in told.stdout


# --- what people read, and the drift gate ------------------------------------------------------------


def test_the_summary_and_the_page_show_every_layer_with_its_items(prod):
    drifted = Item(
        layer=Layer.RUNTIME, name="artifact x 1", host=None, status=Status.DRIFT, message="<b>x</b>", pinned=True
    )
    packet = staging_packet(prod, items=[*staging_packet(prod).items, drifted], status=Status.DRIFT)
    summary, page = render.markdown(packet), render.html(packet)
    assert all(f"## {layer.value[0].upper()}{layer.value[1:]}" in summary for layer in Layer)
    assert "| 🔴 drift | artifact x 1 | controller | <b>x</b> |" in summary
    assert page.count('<section class="layer"') == len(Layer) and "&lt;b&gt;x&lt;/b&gt;" in page


def test_the_drift_gate_counts_only_what_differs_from_a_pin(prod):
    gpu = Item(layer=Layer.GPU, name="GPU", host="g1", status=Status.DRIFT, message="no GPU in sysfs")
    program = Item(
        layer=Layer.RUNTIME,
        name="artifact nats-server 2.15.1",
        host=None,
        status=Status.DRIFT,
        message="differs",
        pinned=True,
    )
    packet = staging_packet(prod, items=[gpu, program], status=Status.DRIFT)
    assert packet.drifted() == ["artifact nats-server 2.15.1: differs"]


# --- the artifacts beside their pins -----------------------------------------------------------------


def test_each_program_on_a_host_is_judged_against_the_pin(monkeypatch):
    from gpuaas.evidence import collect

    local = load_profile("local")
    pin = local.artifacts["nats-server"]
    monkeypatch.setattr(collect.artifacts, "program_digest", lambda name, artifact: f"{name}-program")
    link = "/usr/local/bin/nats-server"

    def host(name: str, target: str | None, digest: str | None) -> collect.HostFindings:
        findings = collect.HostFindings(local.host(name), {"os": "Debian", "kernel": "6"})
        findings.programs["nats-server"] = [(link, {"target": target, "sha256": digest})]
        return findings

    at_pin = f"/opt/gpuaas/nats-server/{pin.version}/nats-server"
    hosts = [
        host("local-server", at_pin, "nats-server-program"),
        host("local-gpu-1", "/opt/gpuaas/nats-server/2.10.0/nats-server", "nats-server-program"),
    ]
    (nats,) = [a for a in collect.artifact_readbacks(local, hosts) if a.name == "nats-server"]
    assert [(p.host, p.version, p.status.value) for p in nats.installed] == [
        ("local-server", pin.version, "ok"),
        ("local-gpu-1", "2.10.0", "drift"),
    ]
    assert nats.status.value == "drift" and "local-gpu-1: 2.10.0 sha256" in nats.message
    hosts = [host("local-server", at_pin, "0" * 64), host("local-gpu-1", None, None)]
    (nats,) = [a for a in collect.artifact_readbacks(local, hosts) if a.name == "nats-server"]
    assert [p.status.value for p in nats.installed] == ["drift", "failed"] and nats.status.value == "failed"
    assert "local-gpu-1: no program at /usr/local/bin/nats-server" in nats.message
    # A pin no deployed role uses is blocked, with that reason.
    unused = local.model_copy(update={"artifacts": {**local.artifacts, "spare": pin}})
    (spare,) = [a for a in collect.artifact_readbacks(unused, []) if a.name == "spare"]
    assert (spare.status.value, spare.message) == ("blocked", "pinned, but no deployed role uses it")


def test_a_readback_without_a_status_is_blocked_not_taken_for_ok(monkeypatch):
    from gpuaas.discovery import role_named
    from gpuaas.evidence import collect

    local = load_profile("local")
    redis = role_named("redis")
    monkeypatch.setattr(type(redis), "read_back", lambda self, profile, node: {"version": "7"})
    item = collect._role_item(redis, local, local.host("local-server"))
    assert (item.status.value, item.message, item.layer.value) == (
        "blocked",
        "its readback gave no status",
        "data services",
    )
