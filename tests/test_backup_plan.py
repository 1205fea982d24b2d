"""Restore plans, figure comparison, age streams and host commands of the backup deploys, without hosts."""

from __future__ import annotations

import io
import re
import subprocess

import pytest
from pyinfra.api.exceptions import DeployError

from gpuaas.backup import crypt
from gpuaas.backup.engine import plan_restore
from gpuaas.backup.service import differences
from gpuaas.backup.sets import Manifest, ObjectEntry
from gpuaas.backup.transport import HostShell
from gpuaas.errors import ProfileError
from gpuaas.profile import Connection, load_profile, parse_profile
from gpuaas.secrets import Secret


def manifest(environment: str, node: str = "staging-server", encryption: str = "") -> Manifest:
    base = f"{environment}/20261124T010203000000Z-abcdef/{node}"
    return Manifest(
        environment=environment,
        set_id="20261124T010203000000Z-abcdef",
        source_sha="abc",
        started="s",
        ended="e",
        encryption=encryption,
        services={
            f"{node}/postgres": {"version": "15", "figures": {"platform": {"public.t": 3}}},
            f"{node}/redis": {"version": "7", "figures": {"db0": 2}},
        },
        objects=[ObjectEntry(f"{base}/postgres/platform.dump", 10, "x"), ObjectEntry(f"{base}/redis/dump.rdb", 5, "y")],
    )


@pytest.fixture(scope="module")
def staging():
    return load_profile("staging")


def test_a_set_of_the_same_environment_maps_onto_its_data_host(staging):
    data_host = staging.group("data")[0].name
    plan = plan_restore(staging, manifest("staging", node=data_host))
    assert list(plan.steps) == [(data_host, "postgres"), (data_host, "redis")]
    assert plan.steps[(data_host, "postgres")][1] == ["platform.dump"]
    assert any(line.startswith("redis 7 from") and "dump.rdb (5 bytes)" in line for line in plan.lines())


def test_another_environments_set_is_refused_unless_allowed_and_then_lands_by_position(staging):
    foreign = manifest("prod", node="prod-data-1")
    with pytest.raises(DeployError, match="belongs to prod, not staging; .* refused unless explicitly allowed"):
        plan_restore(staging, foreign)
    plan = plan_restore(staging, foreign, allow_other_environment=True, only=("redis",))
    assert list(plan.steps) == [("prod-data-1", "redis")]
    assert plan.steps[("prod-data-1", "redis")][0] == staging.group("data")[0]


def test_an_encrypted_set_needs_an_identity(staging):
    with pytest.raises(DeployError, match="is encrypted .* names no identity"):
        plan_restore(staging, manifest("staging", node=staging.group("data")[0].name, encryption="age"))


def test_differences_name_every_figure_that_moved():
    expected = {"platform": {"public.t": 3, "public.u": 1}, "db0": 2}
    found = {"platform": {"public.t": 2}, "db0": 2}
    assert differences(expected, found) == [
        "platform.public.t: expected 3, found 2",
        "platform.public.u: expected 1, found None",
    ]
    assert differences(expected, expected) == []


def test_hosts_are_reached_by_ssh_with_sudo_or_docker_exec(staging):
    local = load_profile("local")
    docker = local.model_copy(update={"connection": Connection(kind="docker")})
    assert HostShell(docker, local.hosts[0]).argv("true") == [
        "docker",
        "exec",
        "-i",
        "local-server",
        "sh",
        "-c",
        "true",
    ]
    node = staging.hosts[0]
    argv = HostShell(staging, node).argv("echo 'a b'")
    assert argv[0] == "ssh" and argv[-2] == f"{staging.connection.user}@{node.address}"
    assert "StrictHostKeyChecking=yes" in argv and "BatchMode=yes" in argv
    assert argv[-1] == "sudo -n sh -c 'echo '\"'\"'a b'\"'\"''"
    # The lane's key and known_hosts, as pyinfra's connection uses them.
    argv = HostShell(local, local.hosts[0]).argv("true")
    assert argv[argv.index("-i") + 1].endswith(".secrets/local/ssh/id_ed25519")
    assert any(
        option.startswith("UserKnownHostsFile=") and option.endswith(".secrets/local/ssh/known_hosts")
        for option in argv
    )
    assert argv[-2:] == ["ops@172.30.77.10", "sudo -n sh -c true"]


def test_age_streams_round_trip_and_a_wrong_identity_is_refused():
    identity = subprocess.run(["age-keygen"], capture_output=True, text=True, check=True).stdout
    recipient = next(line.split(": ")[1] for line in identity.splitlines() if "public key" in line)
    payload = bytes(range(256)) * 5000
    with crypt.encrypting(io.BytesIO(payload), [recipient], "probe") as sealed:
        encrypted = sealed.read()
    assert encrypted.startswith(b"age-encryption.org/v1") and payload[:1000] not in encrypted
    key = Secret("identity", identity.strip().splitlines()[-1])
    with crypt.decrypting(io.BytesIO(encrypted), key, "probe") as plain:
        assert plain.read() == payload
    other = subprocess.run(["age-keygen"], capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    with pytest.raises(crypt.EncryptionError, match="age could not decrypt probe"):
        with crypt.decrypting(io.BytesIO(encrypted), Secret("other", other), "probe") as plain:
            plain.read()


def test_an_encryption_recipient_that_is_not_an_age_key_is_named(raw):
    raw["backup"]["encryption"] = {"recipients": ["ssh-ed25519 AAAA"], "identity": "secret:backup_age_identity"}
    with pytest.raises(ProfileError) as error:
        parse_profile(raw, "staging.yml")
    assert "backup.encryption.recipients[0]: is not an age public key" in error.value.report()


class Listing:
    """list_objects_v2 pages of a bucket, as boto3's paginator returns them."""

    def __init__(self, keys: dict[str, str]):
        self.keys = keys

    def get_paginator(self, name):
        import datetime

        contents = [
            {"Key": key, "Size": 10, "LastModified": datetime.datetime.fromisoformat(when)}
            for key, when in self.keys.items()
        ]
        return type(
            "Pages",
            (),
            {
                "paginate": lambda _self, Bucket, Prefix: [
                    {"Contents": [item for item in contents if item["Key"].startswith(Prefix)]}
                ]
            },
        )()


def test_a_set_names_the_newest_etcd_snapshots_when_rke2_sends_them(staging):
    from gpuaas.backup.engine import etcd_snapshots

    bucket = Listing(
        {
            "etcd/on-demand-1": "2026-11-20T00:00:00+00:00",
            "etcd/scheduled-2": "2026-11-23T06:00:00+00:00",
            "staging/20261124T010203000000Z-abcdef/manifest.json": "2026-11-24T00:00:00+00:00",
        }
    )
    found = etcd_snapshots(bucket, staging)
    assert [item["key"] for item in found] == ["etcd/scheduled-2", "etcd/on-demand-1"]
    assert etcd_snapshots(bucket, load_profile("local")) == []  # local does not send them
    with_etcd = manifest("staging", node=staging.group("data")[0].name)
    with_etcd.etcd_snapshots = found
    assert "the newest RKE2 snapshot of that time is etcd/scheduled-2" in plan_restore(staging, with_etcd).lines()[-1]


def test_hosts_services_and_objects_the_profile_does_not_have_are_refused(staging):
    data_host = staging.group("data")[0].name
    base = f"staging/20261124T010203000000Z-abcdef/{data_host}"
    stranger = manifest("staging", node="stg-intruder")
    with pytest.raises(DeployError, match=f"host 'stg-intruder' is not a data host of staging \\({data_host}\\)"):
        plan_restore(staging, stranger)
    temporal = manifest("staging", node=data_host)
    temporal.services[f"{data_host}/temporal"] = {"version": "1", "figures": {}}
    with pytest.raises(
        DeployError,
        match="service 'temporal' is not one staging backs up "
        r"\(postgres, redis, nats, openbao\); nothing was changed",
    ):
        plan_restore(staging, temporal)
    # Restoring only the services the profile has leaves that one out.
    assert list(plan_restore(staging, temporal, only=("redis",)).steps) == [(data_host, "redis")]
    escaping = manifest("staging", node=data_host)
    escaping.objects.append(ObjectEntry(f"{base}/postgres/../../etc/passwd", 1, "z"))
    with pytest.raises(DeployError, match=f"object '{base}/postgres/../../etc/passwd' is not a file of a service"):
        plan_restore(staging, escaping)


def test_trusted_manifest_keys_name_other_environments_only(raw):
    raw["backup"]["trusted_manifest_keys"] = {"staging": "secret:backup_manifest_key"}
    with pytest.raises(ProfileError) as error:
        parse_profile(raw, "staging.yml")
    assert (
        "backup.trusted_manifest_keys.staging: staging's own sets verify with backup.manifest_key"
        in error.value.report()
    )
    raw["backup"]["trusted_manifest_keys"] = {"prod": "secret:backup_prod_manifest_key"}
    with pytest.raises(ProfileError) as error:
        parse_profile(raw, "staging.yml")
    assert re.search(r"backup.trusted_manifest_keys.prod: refers to .*not defined under secrets", error.value.report())
    raw["secrets"]["backup_prod_manifest_key"] = {"file": "/etc/gpuaas/prod/backup-manifest-key"}
    assert parse_profile(raw, "staging.yml").backup.trusted_manifest_keys == {"prod": "secret:backup_prod_manifest_key"}
