"""roles/keycloak converged on the local data host: always with the Keycloak double's distribution
(tests/doubles/keycloak), and with the official one when KEYCLOAK_DIST points at keycloak-X.Y.Z.zip.

Each run pins the given zip by its sha256 in a copy of the local profile, converges the data services,
then checks readiness on the management port, the imported realm, the bootstrap admin's password
grant, and that a second converge changes nothing.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from gpuaas.profile import load_profile
from gpuaas.secrets import resolve
from tests.doubles.keycloak import build_zip
from tests.local_variant import converge, fact, inventory, on_server, packet_item, pin, read_back

pytestmark = pytest.mark.hosts
DIST = os.environ.get("KEYCLOAK_DIST", "")


def inventory_pinning(archive: Path, directory: Path) -> Path:
    """The local profile with Keycloak on and `archive` pinned."""
    match = re.fullmatch(r"keycloak-(\d+\.\d+\.\d+)\.zip", archive.name)
    assert match, f"expected the official keycloak-X.Y.Z.zip, not {archive.name}"
    version = match.group(1)
    url = f"https://github.com/keycloak/keycloak/releases/download/{version}/{archive.name}"
    return inventory(directory, {"keycloak": pin("keycloak", archive, version, url)}, {"keycloak": {"enabled": True}})


def assert_keycloak_serves_the_platform(inventory_path: Path) -> None:
    converge(inventory_path)
    profile = load_profile(inventory_path.with_suffix(".yml"))
    settings, data = profile.services.keycloak, profile.group("data")[0]
    health = json.loads(on_server(f"curl -fsS http://{data.address}:{settings.management_port}/health/ready"))
    assert health["status"] == "UP"
    base = f"http://{data.address}:{settings.http_port}"
    discovery = json.loads(
        on_server(
            f"curl -fsS -H 'X-Forwarded-Proto: https' {base}/realms/{settings.realm}/.well-known/openid-configuration"
        )
    )
    assert discovery["issuer"] == f"https://{settings.hostname}.{profile.dns.zone}/realms/{settings.realm}"
    token_url = f"{base}/realms/master/protocol/openid-connect/token"
    grant = f"-d grant_type=password -d client_id=admin-cli -d username={settings.admin_user}"
    for password, expected in ((resolve(profile, settings.admin_password).reveal(), "200"), ("wrong", "401")):
        code = on_server(
            f"printf %s '{password}' | curl -sS -o /dev/null -w '%{{http_code}}' {token_url} {grant} "
            "--data-urlencode password@-"
        )
        assert code == expected
    assert on_server("ps -o user= -C java -C python3 | sort -u").split() == ["keycloak"]
    assert on_server("stat -c '%a %U' /opt/keycloak/data /etc/keycloak/keycloak.env").split() == [
        "700",
        "keycloak",
        "640",
        "root",
    ]
    readiness = fact(
        "roles.keycloak.facts.KeycloakReadiness",
        inventory_path,
        home="/opt/keycloak",
        address=data.address,
        management_port=settings.management_port,
    )
    assert readiness == {"version": profile.artifacts[settings.artifact].version, "ready": True}
    assert converge(inventory_path)["success"] == 0
    keycloak = packet_item(read_back(inventory_path), "Keycloak")
    assert (keycloak.layer.value, keycloak.status.value) == ("identity", "ok")
    assert keycloak.message == f"Keycloak {profile.artifacts[settings.artifact].version}, ready"


@pytest.fixture
def keycloak_stopped_afterwards(local_hosts):
    """The local profile runs no Keycloak: once the test is done its server is stopped and disabled, so
    that the lane's hosts listen only where the local profile says (tests/test_listeners_hosts.py)."""
    yield
    on_server("systemctl disable --now keycloak.service 2>/dev/null; true")


def test_keycloak_double_distribution_converges_and_serves(keycloak_stopped_afterwards, tmp_path):
    assert_keycloak_serves_the_platform(inventory_pinning(build_zip(tmp_path), tmp_path))


@pytest.mark.skipif(not DIST, reason="KEYCLOAK_DIST is not set: point it at the official keycloak-X.Y.Z.zip")
def test_official_keycloak_distribution_converges_and_serves(keycloak_stopped_afterwards, tmp_path):
    assert_keycloak_serves_the_platform(inventory_pinning(Path(DIST), tmp_path))
