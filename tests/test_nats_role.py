"""roles/nats: what it renders and reads back, computed without a host."""

from __future__ import annotations

import json

from gpuaas.profile import load_profile
from gpuaas.secrets import Secret
from roles.nats.config import CONFIG, UNIT, auth_file, rendered_files
from roles.nats.facts import NatsVarz
from roles.nats.settings import NatsSettings


def test_config_binds_the_profile_address_and_keeps_credentials_out():
    staging = load_profile("staging")
    files = rendered_files(staging, staging.host("stg-server-1"))
    conf = files[CONFIG]
    assert 'listen: "10.20.0.10:4222"' in conf and 'http: "127.0.0.1:8222"' in conf
    assert 'store_dir: "/var/lib/nats/jetstream"' in conf and "include ./auth.conf" in conf
    assert "password" not in conf
    assert "ExecStart=/usr/local/bin/nats-server -c /etc/nats/nats.conf" in files[UNIT]
    assert "ReadWritePaths=/var/lib/nats/jetstream" in files[UNIT]


def test_auth_file_is_a_secret_that_quotes_the_password():
    auth = auth_file(NatsSettings(), Secret("nats_password", 'Zq"9x'))
    assert "Zq" not in repr(auth) + str(auth)
    assert '{ user: "platform", password: "Zq\\"9x" }' in auth.reveal()


def test_varz_fact_reads_version_jetstream_and_health():
    varz = json.dumps({"version": "2.15.1", "jetstream": {"config": {}}}, indent=2).splitlines()
    assert NatsVarz().process([*varz, '{"status":"ok"}']) == {"version": "2.15.1", "jetstream": True, "healthy": True}
    assert NatsVarz().process([]) is None
    assert "http://10.0.0.1:8222/varz" in NatsVarz().command("10.0.0.1", 8222)


def test_nats_ports_collide_with_other_services(raw):
    import pytest

    from gpuaas.errors import ProfileError
    from gpuaas.profile import parse_profile

    raw["services"] = {"nats": {"monitor_port": 6379}}
    collision = r"services.nats.monitor_port: port 6379 is already used by services.redis.port"
    with pytest.raises(ProfileError, match=collision):
        parse_profile(raw, "staging.yml")
