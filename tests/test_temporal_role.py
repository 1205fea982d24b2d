"""roles/temporal: what both modes render, what server mode refuses, and the facts, without a host."""

from __future__ import annotations

import json

import pytest

from gpuaas.errors import ProfileError
from gpuaas.profile import load_profile, parse_profile
from roles.temporal.config import CONFIG, UNIT, rendered_files, sql_tool
from roles.temporal.facts import TemporalCluster, TemporalNamespaces, TemporalSchema


def test_dev_unit_listens_on_loopback_with_the_frontend_forwarded_and_persists_in_sqlite():
    local = load_profile("local")
    files = rendered_files(local, local.host("local-server"))
    unit = files[UNIT]
    assert "server start-dev --ip 127.0.0.1 --port 7233" in unit and "--ui-ip 127.0.0.1" in unit
    assert "172.30.77.10" not in unit
    for name, port in (("temporal-frontend", 7233), ("temporal-http", 7243)):
        assert f"ListenStream=172.30.77.10:{port}\n" in files[f"/etc/systemd/system/{name}.socket"]
        assert f"systemd-socket-proxyd 127.0.0.1:{port}\n" in files[f"/etc/systemd/system/{name}.service"]
    assert "--db-filename /var/lib/temporal/temporal.db --namespace platform" in unit
    assert "--ui-disable-news-fetch" in unit and "ReadWritePaths=/var/lib/temporal" in unit


def test_nothing_is_rendered_while_temporal_is_off():
    staging = load_profile("staging")
    assert staging.services.temporal.mode == "server" and not staging.services.temporal.enabled
    assert rendered_files(staging, staging.hosts[0]) == {}


SERVER_PINS = {
    name: {"version": "1.29.1", "url": f"https://example.com/{name}.tar.gz", "sha256": "0" * 64}
    for name in ("temporal-server", "temporal-sql-tool", "temporal-schema")
}


@pytest.fixture
def server_mode(raw):
    raw["services"]["temporal"] = {"mode": "server"}
    raw["artifacts"].update(SERVER_PINS)
    return raw


def test_server_mode_renders_postgres_persistence_without_secrets(server_mode):
    profile = parse_profile(server_mode, "staging.yml")
    data = profile.group("data")[0]
    files = rendered_files(profile, data)
    config = files[CONFIG]
    assert config.startswith("# enable-template")
    assert 'databaseName: "temporal"' in config and 'databaseName: "temporal_visibility"' in config
    assert 'pluginName: "postgres12"' in config and f'connectAddr: "{data.address}:5432"' in config
    assert 'password: {{ env "TEMPORAL_DB_PASSWORD" | quote }}' in config
    assert "numHistoryShards: 512" in config and f'rpcAddress: "{data.address}:7233"' in config
    unit = files[UNIT]
    assert (
        "ExecStart=/usr/local/bin/temporal-server --root /etc/temporal --config config --env production start" in unit
    )
    assert "EnvironmentFile=/etc/temporal/temporal.env" in unit


def test_schema_tool_takes_the_password_from_the_environment_file(server_mode):
    profile = parse_profile(server_mode, "staging.yml")
    command = sql_tool(profile, profile.group("data")[0], "visibility", "update-schema -d /x")
    assert command.startswith("set -a && . /etc/temporal/temporal.env && set +a")
    assert 'SQL_PASSWORD="$TEMPORAL_VISIBILITY_DB_PASSWORD"' in command
    assert "--plugin postgres12" in command and "-u temporal_visibility --db temporal_visibility" in command


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (
            lambda raw: raw["artifacts"].pop("temporal-sql-tool"),
            "services.temporal.sql_tool_artifact",
            "names an artifact that is not pinned",
        ),
        (
            lambda raw: raw["services"]["temporal"].update(visibility_database="tv"),
            "services.temporal.visibility_database",
            "names no database of services.postgres.databases",
        ),
        (
            lambda raw: raw["services"]["temporal"].update(history_port=6933),
            "services.temporal.frontend_membership_port",
            "port 6933 is already used by services.temporal.history_port",
        ),
    ],
)
def test_bad_server_settings_name_the_field(server_mode, change, path, message):
    change(server_mode)
    with pytest.raises(ProfileError) as caught:
        parse_profile(server_mode, "staging.yml")
    assert path in str(caught.value) and message in str(caught.value)


def test_schema_fact_compares_recorded_and_newest_versions():
    fact = TemporalSchema().process(["current=1.9", "available=v1.10 v1.2 v1.9 "])
    assert fact == {"current": "1.9", "available": "1.10"}
    assert TemporalSchema().process(["current=", "available="]) == {"current": None, "available": None}


def test_namespace_fact_lists_names():
    listing = json.dumps([{"namespaceInfo": {"name": "platform"}}, {"namespaceInfo": {"name": "temporal-system"}}])
    assert TemporalNamespaces().process(listing.splitlines()) == ["platform", "temporal-system"]
    assert TemporalNamespaces().process(["rpc error"]) == []


def test_cluster_fact_reads_health_and_version():
    output = (
        json.dumps({"status": "SERVING"}, indent=2).splitlines()
        + json.dumps({"serverVersion": "1.32.0", "capabilities": {}}, indent=2).splitlines()
    )
    assert TemporalCluster().process(output) == {"health": "SERVING", "server_version": "1.32.0"}
    assert TemporalCluster().process(["connection refused"]) is None
