"""Origin CA certificates on the local server through deploys/edge.py, with the official SDK against
the local fake of Cloudflare's API: key made on the host and never sent, certificate installed,
renewed within the margin, revoked only with the confirmation."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from gpuaas.profile import REPO_ROOT
from gpuaas.secrets import resolve
from tests.doubles.cloudflare_api import FakeCloudflare
from tests.local_variant import inventory, on_server

pytestmark = pytest.mark.hosts


@pytest.fixture
def fake(local_hosts):
    server = FakeCloudflare(resolve(local_hosts, local_hosts.dns.api_token).reveal(), local_hosts.dns.zone)
    on_server("rm -rf /etc/gpuaas/tls")
    yield server
    server.close()


def run(path, deploy: str, fake: FakeCloudflare, **env: str) -> subprocess.CompletedProcess:
    command = ["pyinfra", "-y", "--json", str(path), deploy]
    return subprocess.run(
        command,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "CLOUDFLARE_BASE_URL": fake.base_url, **env},
    )


def test_origin_certificate_is_issued_for_the_names_renewed_in_the_margin_and_revoked_on_request(fake, tmp_path):
    origin = {"hosts_group": "rke2_servers", "renew_days": 30, "validity_days": 5475}
    path = inventory(tmp_path, {}, {}, dns={"origin_certificates": origin})
    first = run(path, "deploys/edge.py", fake)
    assert first.returncode == 0, first.stderr[-2000:]
    names = on_server("openssl x509 -in /etc/gpuaas/tls/origin.crt -noout -ext subjectAltName")
    assert "DNS:portal.local.gpuaas.test" in names and "DNS:id.local.gpuaas.test" in names
    assert on_server("stat -c '%a %U' /etc/gpuaas/tls/origin.key").split() == ["600", "root"]
    key = on_server("cat /etc/gpuaas/tls/origin.key")
    assert "PRIVATE KEY" in key and not any("PRIVATE KEY" in body for body in fake.bodies)
    assert key.strip() not in "".join(fake.bodies)
    assert len(fake.certificates) == 1 and len(fake.records) == 3 and fake.ssl == "strict"
    again = run(path, "deploys/edge.py", fake)
    assert json.loads(again.stdout)["results"]["totals"]["success"] == 0 and len(fake.certificates) == 1

    # A certificate that expires within the renewal margin is replaced on every run.
    short = inventory(tmp_path, {}, {}, dns={"origin_certificates": {**origin, "renew_days": 6000}})
    assert run(short, "deploys/edge.py", fake).returncode == 0
    assert run(short, "deploys/edge.py", fake).returncode == 0
    assert len(fake.certificates) == 3

    refused = run(path, "deploys/revoke_origin_certs.py", fake)
    assert refused.returncode != 0 and "refused without GPUAAS_CONFIRM='revoke-origin-certificates local'" in (
        refused.stdout + refused.stderr
    )
    current = on_server("cat /etc/gpuaas/tls/origin.id").strip()
    revoked = run(path, "deploys/revoke_origin_certs.py", fake, GPUAAS_CONFIRM="revoke-origin-certificates local")
    assert revoked.returncode == 0, revoked.stderr[-2000:]
    assert fake.certificates[current].get("revoked_at")
    assert on_server("ls /etc/gpuaas/tls").split() == []
    again = run(path, "deploys/revoke_origin_certs.py", fake, GPUAAS_CONFIRM="revoke-origin-certificates local")
    assert json.loads(again.stdout)["results"]["totals"]["success"] == 0


def test_a_plan_over_the_change_limit_is_refused_and_changes_nothing(fake, tmp_path, local_hosts):
    path = inventory(tmp_path, {}, {})
    assert run(path, "deploys/edge.py", fake).returncode == 0
    before = json.dumps(fake.records, sort_keys=True)
    shrunk = inventory(
        tmp_path, {}, {}, dns={"records": [{"name": "portal.local.gpuaas.test", "target": "local-server"}]}
    )
    refused = run(shrunk, "deploys/edge.py", fake)
    assert refused.returncode != 0
    assert "would change or delete 2 of the 3 records" in refused.stdout + refused.stderr
    assert json.dumps(fake.records, sort_keys=True) == before
    forced = run(shrunk, "deploys/edge.py", fake, GPUAAS_FORCE_DNS="yes")
    assert forced.returncode == 0 and len(fake.records) == 1
