"""roles/object_store: the unit, the S3 identities and the profile rules, computed without a host."""

from __future__ import annotations

import json

import pytest

from gpuaas.errors import ProfileError
from gpuaas.profile import load_profile, parse_profile
from gpuaas.secrets import Secret
from roles.object_store.config import UNIT, rendered_files, s3_identities
from roles.object_store.facts import SeaweedBuckets


def test_unit_binds_the_profile_address_with_the_s3_identities():
    local = load_profile("local")
    unit = rendered_files(local, local.host("local-server"))[UNIT]
    assert "-ip=172.30.77.10 -ip.bind=172.30.77.10" in unit
    assert "-s3 -s3.port=8333 -s3.config=/etc/seaweedfs/s3.json" in unit
    assert rendered_files(load_profile("staging"), load_profile("staging").hosts[0]) == {}


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
