"""roles/openbao: settings, rendered files, the certificate fact, and where init's output may be stored."""

from __future__ import annotations

import json
import stat

import pytest

from gpuaas.errors import ProfileError, SecretError
from gpuaas.facts import CertificateNames
from gpuaas.profile import load_profile, parse_profile
from gpuaas.render import host_files
from gpuaas.secrets import resolve, store, writable_path
from roles.openbao.config import CONFIG, UNIT, client, subject_alt_names
from roles.openbao.facts import BaoStatus


def test_config_binds_the_host_address_with_tls_and_raft():
    profile = load_profile("staging")
    data = profile.group("data")[0]
    files = host_files(profile, data.name)
    config = files[CONFIG]
    assert f'address         = "{data.address}:8200"' in config
    assert f'cluster_addr = "https://{data.address}:8201"' in config
    assert 'storage "raft"' in config and f'node_id = "{data.name}"' in config
    assert 'tls_cert_file   = "/etc/openbao/tls/openbao.crt"' in config
    assert "User=openbao" in files[UNIT] and "Restart=on-failure" in files[UNIT]


def test_no_openbao_files_on_hosts_outside_the_data_group():
    profile = load_profile("staging")
    agent = profile.group("rke2_agents")[0]
    assert CONFIG not in host_files(profile, agent.name)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"key_shares": 2, "key_threshold": 3}, "key_threshold must not be more than key_shares"),
        ({"tls_cert": "secret:openbao_cert"}, "give tls_cert and tls_key together"),
        ({"key_shares": 0}, "greater than or equal to 1"),
        ({"port": 5432}, "port 5432 is already used by services.postgres.port"),
        ({"init_secret": "plain-text"}, "expected a secret reference"),
    ],
)
def test_bad_settings_name_the_field(raw, settings, message):
    raw.setdefault("services", {})["openbao"] = settings
    with pytest.raises(ProfileError) as caught:
        parse_profile(raw, "staging.yml")
    assert "services.openbao" in str(caught.value) and message in str(caught.value)


def test_client_trusts_the_host_ca_or_the_profile_certificate(raw):
    profile = load_profile("staging")
    data = profile.group("data")[0]
    assert client(profile.services.openbao, data, "status").endswith(
        "BAO_CACERT=/etc/openbao/tls/ca.crt /usr/local/bin/bao status"
    )
    raw.setdefault("services", {})["openbao"] = {"tls_cert": "secret:bao_cert", "tls_key": "secret:bao_key"}
    raw["secrets"].update({"bao_cert": {"env": "BAO_CERT"}, "bao_key": {"env": "BAO_KEY"}})
    own = parse_profile(raw, "staging.yml")
    assert "BAO_CACERT=/etc/openbao/tls/openbao.crt" in client(own.services.openbao, data, "status")


def test_certificate_fact_reads_names_and_validity():
    output = ["X509v3 Subject Alternative Name: ", "    DNS:localhost, DNS:s1, IP Address:10.0.0.5", "VALID"]
    assert CertificateNames().process(output) == {
        "names": ["DNS:localhost", "DNS:s1", "IP Address:10.0.0.5"],
        "valid": True,
    }
    assert CertificateNames().process(output[:-1] + ["EXPIRING"])["valid"] is False
    assert CertificateNames().process([]) is None


def test_certificate_names_match_what_openssl_prints():
    data = load_profile("staging").group("data")[0]
    assert subject_alt_names(data) == sorted(
        [f"DNS:{data.name}", "DNS:localhost", f"IP Address:{data.address}", "IP Address:127.0.0.1"]
    )


def test_status_fact_reads_sealed_and_unanswered():
    sealed = {"initialized": True, "sealed": True, "version": "2.7.2", "n": 5, "t": 3, "storage_type": "raft"}
    fact = BaoStatus().process(json.dumps(sealed).splitlines())
    assert fact["sealed"] is True and (fact["shares"], fact["threshold"]) == (5, 3)
    assert BaoStatus().process(["bao: command not found"]) is None


def test_stored_secret_is_written_private_and_never_overwritten(tmp_path):
    profile = load_profile("local")
    with pytest.raises(SecretError, match="not stored yet"):
        resolve(profile, "secret:openbao_init", generated_dir=tmp_path)
    path = store(profile, "secret:openbao_init", '{"a": 1}\n', generated_dir=tmp_path)
    assert path == tmp_path / "local" / "openbao_init"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert resolve(profile, "secret:openbao_init", generated_dir=tmp_path).reveal() == '{"a": 1}'
    store(profile, "secret:openbao_init", '{"a": 2}\n', generated_dir=tmp_path)
    replaced = list(path.parent.glob("openbao_init.replaced-*"))
    assert len(replaced) == 1 and replaced[0].read_text() == '{"a": 1}\n'
    assert resolve(profile, "secret:openbao_init", generated_dir=tmp_path).reveal() == '{"a": 2}'


def test_file_source_is_writable_and_env_is_refused_with_the_reason(raw, tmp_path):
    raw["secrets"]["openbao_init"] = {"file": str(tmp_path / "init.json")}
    assert writable_path(parse_profile(raw, "staging.yml"), "secret:openbao_init") == tmp_path / "init.json"
    raw["secrets"]["openbao_init"] = {"env": "GPUAAS_STAGING_OPENBAO_INIT"}
    with pytest.raises(SecretError, match="has a env source, which a deploy cannot write"):
        writable_path(parse_profile(raw, "staging.yml"), "secret:openbao_init")
