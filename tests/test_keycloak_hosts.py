"""roles/keycloak converged on the local data host: always with the Keycloak double's distribution
(tests/doubles/keycloak), and with the official one when KEYCLOAK_DIST points at keycloak-X.Y.Z.zip.

Each run pins the given zip by its sha256 in a copy of the local profile, converges the data services,
then checks readiness on the management port, the imported realm, the bootstrap admin's password
grant, and that a second converge changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gpuaas.artifacts import CACHE_DIR
from gpuaas.profile import REPO_ROOT, load_profile
from gpuaas.secrets import resolve
from tests.doubles.keycloak import build_zip

pytestmark = pytest.mark.hosts
DIST = os.environ.get("KEYCLOAK_DIST", "")


def inventory_pinning(archive: Path, directory: Path) -> Path:
    """A copy of the local profile with Keycloak on and `archive` pinned, and its pyinfra inventory."""
    match = re.fullmatch(r"keycloak-(\d+\.\d+\.\d+)\.zip", archive.name)
    assert match, f"expected the official keycloak-X.Y.Z.zip, not {archive.name}"
    version = match.group(1)
    cached = CACHE_DIR / f"keycloak-{version}" / archive.name
    cached.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(archive, cached)
    raw = yaml.safe_load((REPO_ROOT / "inventories" / "local.yml").read_text())
    raw["artifacts"]["keycloak"] = {
        "version": version,
        "url": f"https://github.com/keycloak/keycloak/releases/download/{version}/{archive.name}",
        "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
    }
    raw["services"]["keycloak"] = {"enabled": True}
    (directory / "local.yml").write_text(yaml.safe_dump(raw))
    inventory = directory / "local.py"
    loader = f"load_groups({str(directory / 'local.yml')!r})"
    inventory.write_text(f"from gpuaas.inventory import load_groups\n\nglobals().update({loader})\n")
    return inventory


def converge(inventory: Path) -> dict:
    result = subprocess.run(["pyinfra", "-y", "--json", str(inventory), "deploys/data.py"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=False, timeout=1200)  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return json.loads(result.stdout)["results"]["totals"]


def on_server(command: str) -> str:
    return subprocess.run(["docker", "exec", "local-server", "sh", "-c", command], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip


def assert_keycloak_serves_the_platform(inventory: Path) -> None:
    converge(inventory)
    profile = load_profile(inventory.with_suffix(".yml"))
    settings, data = profile.services.keycloak, profile.group("data")[0]
    health = json.loads(on_server(f"curl -fsS http://{data.address}:{settings.management_port}/health/ready"))
    assert health["status"] == "UP"
    base = f"http://{data.address}:{settings.http_port}"
    discovery = json.loads(on_server(f"curl -fsS -H 'X-Forwarded-Proto: https' "
                                     f"{base}/realms/{settings.realm}/.well-known/openid-configuration"))  # fmt: skip
    assert discovery["issuer"] == f"https://{settings.hostname}.{profile.dns.zone}/realms/{settings.realm}"
    token_url = f"{base}/realms/master/protocol/openid-connect/token"
    grant = f"-d grant_type=password -d client_id=admin-cli -d username={settings.admin_user}"
    for password, expected in ((resolve(profile, settings.admin_password).reveal(), "200"), ("wrong", "401")):
        code = on_server(f"printf %s '{password}' | curl -sS -o /dev/null -w '%{{http_code}}' {token_url} {grant} "
                         "--data-urlencode password@-")  # fmt: skip
        assert code == expected
    assert on_server("ps -o user= -C java -C python3 | sort -u").split() == ["keycloak"]
    assert converge(inventory)["success"] == 0


def test_keycloak_double_distribution_converges_and_serves(local_hosts, tmp_path):
    assert_keycloak_serves_the_platform(inventory_pinning(build_zip(tmp_path), tmp_path))


@pytest.mark.skipif(not DIST, reason="KEYCLOAK_DIST is not set: point it at the official keycloak-X.Y.Z.zip")
def test_official_keycloak_distribution_converges_and_serves(local_hosts, tmp_path):
    assert_keycloak_serves_the_platform(inventory_pinning(Path(DIST), tmp_path))
