"""roles/object_store: the unit, the S3 identities and the profile rules, computed without a host."""

from __future__ import annotations

import json

import pytest

from gpuaas.errors import ProfileError
from gpuaas.profile import load_profile, parse_profile
from gpuaas.secrets import Secret
from roles.object_store.config import UNIT, rendered_files, s3_identities
from roles.object_store.facts import SeaweedBuckets


def test_servers_listen_on_loopback_and_only_the_s3_socket_on_the_profile_address():
    local = load_profile("local")
    files = rendered_files(local, local.host("local-server"))
    unit = files[UNIT]
    socket, proxy = files["/etc/systemd/system/seaweedfs-s3.socket"], files["/etc/systemd/system/seaweedfs-s3.service"]
    assert "-ip=127.0.0.1 -ip.bind=127.0.0.1" in unit and "172.30.77.10" not in unit
    for flag in (
        "-master.port.grpc=19333",
        "-volume.port.grpc=18080",
        "-filer.port.grpc=18888",
        "-s3.port.grpc=18333",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
    ):
        assert flag in unit
    assert "-s3 -s3.port=8333" in unit and "-s3.config=/etc/seaweedfs/s3.json" in unit
    assert "ListenStream=172.30.77.10:8333\n" in socket
    assert "systemd-socket-proxyd 127.0.0.1:8333\n" in proxy and "DynamicUser=true" in proxy
    assert "BindsTo=seaweedfs.service" in proxy
    assert rendered_files(load_profile("staging"), load_profile("staging").hosts[0]) == {}


def test_a_port_whose_grpc_twin_is_no_port_is_refused(raw):
    raw["services"] = {"object_store": {"enabled": True, "filer_port": 60000}}
    with pytest.raises(ProfileError, match=r"services.object_store.filer_port: .*55535"):
        parse_profile(raw, "staging.yml")


def test_the_store_listens_beside_nothing_of_its_own(raw):
    raw["services"] = {"object_store": {"enabled": True, "filer_port": 8200}}
    raw["backup"]["endpoint"] = "http://10.20.0.10:8333"
    with pytest.raises(
        ProfileError,
        match=r"services.object_store.filer_port: port 8200 is already used by "
        r"services.openbao.port on stg-server-1",
    ):
        parse_profile(raw, "staging.yml")


def test_identities_are_a_secret_with_one_backup_identity():
    identities = s3_identities(Secret("key", "AKID"), Secret("secret", "S3CR3T"))
    assert "AKID" not in repr(identities) and "S3CR3T" not in repr(identities)
    document = json.loads(identities.reveal())
    assert document["identities"][0]["credentials"] == [{"accessKey": "AKID", "secretKey": "S3CR3T"}]


def test_enabled_store_must_be_the_backup_endpoint(raw):
    raw["services"] = {"object_store": {"enabled": True}}
    with pytest.raises(ProfileError, match=r"backup.endpoint: services.object_store is enabled: .*10.20.0.10:8333"):
        parse_profile(raw, "staging.yml")


def test_bucket_listing_is_parsed():
    output = ['  gpuaas-local-backups\tsize:0\tlogical:0\tchunk:0\towner:"backup"', "> "]
    assert SeaweedBuckets().process(output) == ["gpuaas-local-backups"]
