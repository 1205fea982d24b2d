"""Verify OpenBao on the local data host: TLS that verifies, raft storage, initialised and unsealed."""

from __future__ import annotations

import json

from gpuaas.profile import load_profile
from gpuaas.secrets import resolve
from roles.openbao.config import CA_CERT, PENDING_INIT, TLS_KEY, api_url, client
from tests.lane import lane_host

PROFILE = load_profile("local")
SETTINGS = PROFILE.services.openbao
DATA = PROFILE.group("data")[0]
HOST = lane_host(PROFILE, DATA.name)


def status() -> dict:
    # Exit code 2 (sealed) must fail this test too, so check_output is right here.
    return json.loads(HOST.check_output(client(SETTINGS, DATA, "status -format=json")))


def test_service_runs_as_its_own_account_on_private_storage():
    service = HOST.service("openbao")
    assert service.is_running and service.is_enabled
    assert HOST.check_output("ps -o user= -C bao") == "openbao"
    assert HOST.file(SETTINGS.data_dir).mode == 0o700
    assert HOST.file(TLS_KEY).mode == 0o640 and HOST.file(TLS_KEY).group == "openbao"


def test_unsealed_on_raft_with_the_pinned_version():
    current = status()
    assert current["initialized"] is True and current["sealed"] is False
    assert current["storage_type"] == "raft"
    assert current["version"] == PROFILE.artifacts[SETTINGS.artifact].version
    assert (current["n"], current["t"]) == (SETTINGS.key_shares, SETTINGS.key_threshold)


def test_api_certificate_verifies_against_the_host_ca_only():
    url = f"{api_url(SETTINGS, DATA)}/v1/sys/health"
    health = json.loads(HOST.check_output(f"curl -fsS --cacert {CA_CERT} {url}"))
    assert health["initialized"] and not health["sealed"]
    # Without the host's CA the certificate is not trusted: TLS is really checked.
    assert HOST.run(f"curl -sS -o /dev/null {url}").rc == 60


def test_root_token_works_and_init_output_is_gone_from_the_host():
    root = json.loads(resolve(PROFILE, SETTINGS.init_secret).reveal())[DATA.name]["root_token"]
    token = HOST.run(f"BAO_TOKEN={root} " + client(SETTINGS, DATA, "token lookup -format=json"))
    assert token.rc == 0 and "root" in json.loads(token.stdout)["data"]["policies"]
    assert not HOST.file(PENDING_INIT).exists
