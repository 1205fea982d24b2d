"""roles/demo/keycloak.py: the realm import made from a baseline, and the reimport and sign-in checks run
for real (their curl command lines, on this machine) against the Keycloak double's HTTP server
(tests/doubles/keycloak), served in-process from a temporary state directory. No hosts, no Docker."""

from __future__ import annotations

import ipaddress
import json
import time
import urllib.error
import urllib.request
from threading import Thread
from types import SimpleNamespace

import pytest

import roles.demo.keycloak as demo_keycloak
from gpuaas.backup.service import ServiceHost
from gpuaas.backup.transport import HostCommandError, HostShell
from gpuaas.profile import parse_profile
from gpuaas.secrets import Secret
from roles.demo.baseline import Baseline, Persona
from roles.demo.keycloak import CHECK_CLIENT, realm_import, reimport, sign_in, totp_code
from tests.doubles.keycloak import kc_double

PASSWORD = "Persona-pass-7c1e"
SEED = "demo-seed-0123456789"
ADMIN_PASSWORD = "Admin-pass-42ab"
SECRETS = {
    "secret:demo_persona_password": PASSWORD,
    "secret:demo_mfa_seed": SEED,
    "secret:keycloak_admin_password": ADMIN_PASSWORD,
}


def baseline() -> Baseline:
    return Baseline(
        personas=[
            Persona(username="ada", persona="user", name="Ada Lovelace", email="ada@example.com", tenant="acme"),
            Persona(
                username="grace", persona="tenant_admin", name="Grace Hopper", email="grace@example.com", mfa="totp"
            ),
            Persona(username="linus", persona="platform_admin", name="Linus", email="linus@example.com", mfa="pending"),
            Persona(username="oscar", persona="ops", name="Oscar Ops Team", email="oscar@example.com"),
        ],
        persona_password="secret:demo_persona_password",
        mfa_seed="secret:demo_mfa_seed",
    )


@pytest.fixture
def secrets(monkeypatch):
    """`resolve` answering from SECRETS, recording what it was asked for."""
    asked = []

    def fake(profile, reference):
        asked.append(reference)
        return Secret(reference.removeprefix("secret:"), SECRETS[reference])

    monkeypatch.setattr(demo_keycloak, "resolve", fake)
    return asked


def profile_for(raw, http_port: int = 8180):
    raw["services"]["keycloak"] = {
        "enabled": True,
        "http_port": http_port,
        "clients": [{"client_id": "portal", "host": "portal"}],
    }
    raw["artifacts"]["keycloak"] = {
        "version": "26.0.7",
        "url": "https://github.com/keycloak/keycloak/releases/download/26.0.7/keycloak-26.0.7.zip",
        "sha256": "0" * 64,
    }
    return parse_profile(raw, "staging.yml")


def by_name(users: list[dict]) -> dict[str, dict]:
    return {user["username"]: user for user in users}


def test_realm_import_has_the_personas_roles_credentials_and_check_client(raw, secrets):
    imported = realm_import(profile_for(raw), baseline())
    assert isinstance(imported, Secret)
    document = json.loads(imported.reveal())
    assert document["realm"] == "platform" and document["sslRequired"] == "external"
    assert {role["name"] for role in document["roles"]["realm"]} == {"user", "tenant_admin", "platform_admin", "ops"}
    users = by_name(document["users"])
    assert set(users) == {"ada", "grace", "linus", "oscar"}
    ada = users["ada"]
    assert ada["enabled"] and ada["emailVerified"] and ada["email"] == "ada@example.com"
    assert (ada["firstName"], ada["lastName"]) == ("Ada", "Lovelace")
    assert ada["realmRoles"] == ["user"] and ada["attributes"] == {"tenant": ["acme"]}
    assert ada["credentials"] == [{"type": "password", "value": PASSWORD, "temporary": False}]
    assert "requiredActions" not in ada and "attributes" not in users["grace"]
    assert (users["oscar"]["firstName"], users["oscar"]["lastName"]) == ("Oscar Ops", "Team")
    assert (users["linus"]["firstName"], users["linus"]["lastName"]) == ("Linus", "Linus")
    password, otp = users["grace"]["credentials"]
    assert password["type"] == "password" and otp["type"] == "otp"
    assert json.loads(otp["secretData"]) == {"value": SEED}
    assert json.loads(otp["credentialData"]) == {
        "subType": "totp",
        "digits": 6,
        "period": 30,
        "algorithm": "HmacSHA1",
        "counter": 0,
    }
    assert users["linus"]["requiredActions"] == ["CONFIGURE_TOTP"]
    assert [c["type"] for c in users["linus"]["credentials"]] == ["password"]
    clients = {client["clientId"]: client for client in document["clients"]}
    assert set(clients) == {"portal", CHECK_CLIENT}
    check = clients[CHECK_CLIENT]
    assert check["publicClient"] and check["directAccessGrantsEnabled"] and not check["standardFlowEnabled"]
    assert not clients["portal"]["directAccessGrantsEnabled"]


def test_the_secrets_appear_only_in_the_secret_value(raw, secrets):
    imported = realm_import(profile_for(raw), baseline())
    assert PASSWORD in imported.reveal() and SEED in imported.reveal()
    for shown in (repr(imported), str(imported), imported.name, f"{imported}", str([imported])):
        assert PASSWORD not in shown and SEED not in shown
    assert secrets == ["secret:demo_persona_password", "secret:demo_mfa_seed"]


def test_totp_code_uses_the_raw_seed_as_the_hmac_key():
    # RFC 6238's SHA-1 key, as Keycloak keeps it (raw), and the double's own computation agree.
    seed = "12345678901234567890"
    assert kc_double.hotp(seed.encode(), 59 // 30, 8) == "94287082"
    assert totp_code(Secret("seed", seed)) == kc_double.hotp(seed.encode(), int(time.time() // 30))


def test_the_double_accepts_the_neighbouring_windows_only():
    credential = {"type": "otp", "secretData": json.dumps({"value": SEED}), "credentialData": "{}"}
    now = 1_800_000_015.0
    code = lambda at: kc_double.hotp(SEED.encode(), int(at // 30))  # noqa: E731
    assert all(kc_double.totp_matches(credential, code(now + shift), now) for shift in (-30, 0, 30))
    assert not any(kc_double.totp_matches(credential, code(now + shift), now) for shift in (-60, 60))
    assert not kc_double.totp_matches(credential, "", now)


class LocalShell(HostShell):
    """A HostShell whose commands run here (`sh -c`), with their stdin; the command lines are kept."""

    def __init__(self, profile, node):
        super().__init__(profile, node)
        self.commands: list[str] = []

    def argv(self, command: str) -> list[str]:
        self.commands.append(command)
        return ["sh", "-c", command]


@pytest.fixture
def keycloak(tmp_path):
    """The double's HTTP server on 127.0.0.1 (a free port), its realms in a temporary state directory."""
    kc_double.bootstrap_admin(tmp_path, "admin", ADMIN_PASSWORD)
    server = kc_double.public_server("127.0.0.1", 0, tmp_path)
    Thread(target=server.serve_forever, daemon=True).start()
    yield SimpleNamespace(port=server.server_address[1], state=tmp_path)
    server.shutdown()
    server.server_close()


@pytest.fixture
def target(raw, keycloak, secrets):
    profile = profile_for(raw, keycloak.port)
    node = SimpleNamespace(name="data-test", address=ipaddress.ip_address("127.0.0.1"))
    return ServiceHost(profile, node, LocalShell(profile, node))


def personas() -> dict[str, Persona]:
    return {persona.username: persona for persona in baseline().personas}


def grant(port: int, form: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/realms/platform/protocol/openid-connect/token",
        data=urllib.parse.urlencode(form).encode(),
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_reimport_then_each_persona_signs_in(target, keycloak):
    reimport(target, realm_import(target.profile, baseline()))
    people, password, seed = personas(), Secret("demo_persona_password", PASSWORD), Secret("demo_mfa_seed", SEED)
    assert sign_in(target, "platform", people["ada"], password, None) == "signed in"
    assert sign_in(target, "platform", people["oscar"], password, None) == "signed in"
    assert sign_in(target, "platform", people["grace"], password, seed) == "signed in"
    assert sign_in(target, "platform", people["linus"], password, None) == "MFA set-up pending"
    for command in target.shell.commands:
        assert PASSWORD not in command and SEED not in command and ADMIN_PASSWORD not in command


def test_the_totp_persona_needs_the_right_code(target, keycloak):
    reimport(target, realm_import(target.profile, baseline()))
    grace, password = personas()["grace"], Secret("demo_persona_password", PASSWORD)
    with pytest.raises(HostCommandError, match=r"persona grace .*Invalid user credentials") as refused:
        sign_in(target, "platform", grace, password, Secret("demo_mfa_seed", "another-seed"))
    assert PASSWORD not in str(refused.value)
    with pytest.raises(HostCommandError, match="persona grace .*no TOTP seed"):
        sign_in(target, "platform", grace, password, None)
    form = {"grant_type": "password", "client_id": CHECK_CLIENT, "username": "grace", "password": PASSWORD}
    assert grant(keycloak.port, form) == (401, kc_double.INVALID_CREDENTIALS)
    assert grant(keycloak.port, {**form, "totp": totp_code(Secret("seed", SEED))})[0] == 200


def test_the_pending_persona_is_not_fully_set_up(target, keycloak):
    reimport(target, realm_import(target.profile, baseline()))
    form = {"grant_type": "password", "client_id": CHECK_CLIENT, "username": "linus", "password": PASSWORD}
    assert grant(keycloak.port, form) == (
        400,
        {"error": "invalid_grant", "error_description": "Account is not fully set up"},
    )
    # Credentials come first, as in Keycloak: a wrong password is refused as such.
    assert grant(keycloak.port, {**form, "password": "nope"}) == (401, kc_double.INVALID_CREDENTIALS)
    # A client without the password grant (the portal's) is not a way in.
    assert grant(keycloak.port, {**form, "client_id": "portal"})[1]["error"] == "unauthorized_client"


def test_a_wrong_password_is_refused_naming_the_persona_only(target, keycloak):
    reimport(target, realm_import(target.profile, baseline()))
    wrong = "Wrong-pass-5d2f"
    for username in ("ada", "linus"):
        with pytest.raises(HostCommandError, match=f"persona {username} .*Invalid user credentials") as refused:
            sign_in(target, "platform", personas()[username], Secret("demo_persona_password", wrong), None)
        assert wrong not in str(refused.value) and PASSWORD not in str(refused.value)


def test_a_second_reimport_replaces_the_realm(target, keycloak):
    imported = realm_import(target.profile, baseline())
    reimport(target, imported)
    stored = kc_double.realm_file(keycloak.state, "platform")
    document = json.loads(stored.read_text())
    document["users"].append(
        {"username": "intruder", "enabled": True, "credentials": [{"type": "password", "value": "x-pass"}]}
    )
    stored.write_text(json.dumps(document))
    form = {"grant_type": "password", "client_id": CHECK_CLIENT, "username": "intruder", "password": "x-pass"}
    assert grant(keycloak.port, form)[0] == 200
    reimport(target, imported)
    assert grant(keycloak.port, form) == (401, kc_double.INVALID_CREDENTIALS)
    assert sign_in(target, "platform", personas()["ada"], Secret("p", PASSWORD), None) == "signed in"


def test_reimport_fails_clearly_without_the_admin_token(target, keycloak, monkeypatch):
    monkeypatch.setitem(SECRETS, "secret:keycloak_admin_password", "Not-the-admin-pass")
    with pytest.raises(HostCommandError, match="re-importing the Keycloak realm platform failed.*no admin token") as e:
        reimport(target, realm_import(target.profile, baseline()))
    assert "Not-the-admin-pass" not in str(e.value) and PASSWORD not in str(e.value)
    assert not kc_double.realm_file(keycloak.state, "platform").exists()


def test_the_admin_api_wants_the_admin_token(keycloak):
    request = urllib.request.Request(f"http://127.0.0.1:{keycloak.port}/admin/realms/platform", method="DELETE")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401
