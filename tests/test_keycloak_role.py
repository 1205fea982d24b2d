"""roles/keycloak: what it renders from a profile, its checks, and its facts (always; no distribution needed)."""

from __future__ import annotations

import json

import pytest

from gpuaas.errors import ProfileError, SecretError
from gpuaas.profile import parse_profile
from gpuaas.render import host_files
from gpuaas.secrets import Secret
from roles.keycloak.config import UNIT, environment_file, paths
from roles.keycloak.facts import KeycloakReadiness
from roles.keycloak.settings import KeycloakSettings

PIN = {
    "version": "26.0.7",
    "url": "https://github.com/keycloak/keycloak/releases/download/26.0.7/keycloak-26.0.7.zip",
    "sha256": "0" * 64,
}


@pytest.fixture
def with_keycloak(raw):
    raw["services"]["keycloak"] = {"enabled": True, "clients": [{"client_id": "portal", "host": "portal"}]}
    raw["artifacts"]["keycloak"] = PIN
    return raw


def test_renders_the_config_unit_and_realm_for_the_pinned_version(with_keycloak):
    profile = parse_profile(with_keycloak, "staging.yml")
    data = profile.group("data")[0]
    files, where = host_files(profile, data.name), paths(profile)
    assert where["dist"] == "/opt/gpuaas/keycloak/keycloak-26.0.7"
    config = files[where["config"]]
    assert f"db-url=jdbc:postgresql://{data.address}:5432/keycloak" in config
    assert "db=postgres" in config and "health-enabled=true" in config
    assert f"http-host={data.address}" in config and "http-management-port=9000" in config
    assert f"hostname=https://id.{profile.dns.zone}" in config
    assert "password" not in config
    unit = files[UNIT]
    assert f"ExecStart={where['dist']}/bin/kc.sh start --optimized --import-realm" in unit
    assert "EnvironmentFile=/etc/keycloak/keycloak.env" in unit and "User=keycloak" in unit
    realm = json.loads(files[where["realm"]])
    assert realm["realm"] == "platform" and realm["sslRequired"] == "external"
    (portal,) = realm["clients"]
    assert portal["redirectUris"] == [f"https://portal.{profile.dns.zone}/*"]
    assert portal["publicClient"] and portal["attributes"]["pkce.code.challenge.method"] == "S256"


def test_nothing_is_rendered_when_keycloak_is_off(raw):
    profile = parse_profile(raw, "staging.yml")
    assert not any("keycloak" in path for path in host_files(profile, profile.group("data")[0].name))


def test_environment_file_carries_the_secrets_only_as_a_secret():
    settings = KeycloakSettings()
    env = environment_file(settings, Secret("pg_keycloak_password", "db-pass"), Secret("admin", "admin-pass"))
    assert "db-pass" not in repr(env) and "admin-pass" not in str(env)
    assert "KC_DB_PASSWORD='db-pass'" in env.reveal() and "KC_BOOTSTRAP_ADMIN_PASSWORD='admin-pass'" in env.reveal()
    assert "KC_BOOTSTRAP_ADMIN_USERNAME='admin'" in env.reveal()
    with pytest.raises(SecretError, match="secret 'admin' holds a single quote") as refused:
        environment_file(settings, Secret("pg_keycloak_password", "db-pass"), Secret("admin", "it's"))
    assert "it's" not in str(refused.value)


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (lambda raw: raw["artifacts"].pop("keycloak"), "services.keycloak.artifact", "artifact that is not pinned"),
        (
            lambda raw: raw["services"]["keycloak"].update(database="idp"),
            "services.keycloak.database",
            "names no database of services.postgres.databases",
        ),
        (
            lambda raw: raw["services"]["keycloak"].update(http_port=6379),
            "services.keycloak.http_port",
            "port 6379 is already used by services.redis.port",
        ),
        (
            lambda raw: raw["services"]["keycloak"].update(admin_password="hunter2"),
            "services.keycloak.admin_password",
            "expected a secret reference",
        ),
    ],
)
def test_bad_keycloak_settings_name_the_field(with_keycloak, change, path, message):
    change(with_keycloak)
    with pytest.raises(ProfileError) as caught:
        parse_profile(with_keycloak, "staging.yml")
    report = str(caught.value)
    assert path in report and message in report and "hunter2" not in report


def test_readiness_fact_reads_version_and_health():
    output = ["Keycloak - Version 26.0.7", '{"status": "UP", "checks": []}']
    assert KeycloakReadiness().process(output) == {"version": "26.0.7", "ready": True}
    assert KeycloakReadiness().process(output[:1] + ["curl: (7) Failed to connect"])["ready"] is False
    assert KeycloakReadiness().process([]) is None
