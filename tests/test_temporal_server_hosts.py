"""roles/temporal in server mode on the local data host, with the Temporal doubles' artifacts
(tests/doubles/temporal: temporal-server and temporal-sql-tool doubles, a small versioned schema).

What is real here: the pins and their verification, PostgreSQL with both databases and their owners,
the schema walk recorded in schema_version, the unit and its environment file, the namespace
registration through the temporal CLI, and a gRPC frontend answering `operator cluster health`.
"""

from __future__ import annotations

import pytest

from gpuaas.profile import REPO_ROOT, load_profile
from roles.temporal.config import health_command
from tests.doubles.temporal import SCHEMA, VERSION, build_release, build_schema_source
from tests.local_variant import converge, inventory, on_server, pin

pytestmark = pytest.mark.hosts
RELEASES = "https://github.com/temporalio/temporal/releases/download"


@pytest.fixture
def server_mode(local_hosts, tmp_path):
    release, source = build_release(tmp_path), build_schema_source(tmp_path)
    release_url = f"{RELEASES}/v{VERSION}/{release.name}"
    artifacts = {
        "temporal-server": pin("temporal-server", release, VERSION, release_url, binary="temporal-server"),
        "temporal-sql-tool": pin("temporal-sql-tool", release, VERSION, release_url, binary="temporal-sql-tool"),
        "temporal-schema": pin("temporal-schema", source, VERSION,
                               f"https://github.com/temporalio/temporal/archive/refs/tags/{source.name}"),
    }  # fmt: skip
    yield inventory(tmp_path, artifacts, {"temporal": {"mode": "server", "namespaces": ["platform", "billing"]}})
    # Back to the local profile's dev mode for the tests that follow.
    converge(REPO_ROOT / "inventories" / "local.py")


def schema_version(database: str) -> str:
    query = f"SELECT curr_version FROM schema_version WHERE db_name = '{database}'"
    return on_server(f'runuser -u postgres -- psql -XAtq -d {database} -c "{query}"').strip()


def test_server_mode_sets_up_the_schemas_registers_namespaces_and_serves(server_mode):
    converge(server_mode)
    profile = load_profile(server_mode.with_suffix(".yml"))
    settings, data = profile.services.temporal, profile.group("data")[0]
    newest = max(SCHEMA["temporal"], key=lambda version: tuple(map(int, version.split("."))))
    assert schema_version(settings.database) == newest
    assert schema_version(settings.visibility_database) == newest
    assert "SERVING" in on_server(health_command(settings, str(data.address)))
    namespaces = on_server(f"temporal operator namespace list --address {data.address}:{settings.port}")
    assert "platform" in namespaces and "billing" in namespaces
    assert "--env production start" in on_server("systemctl show -p ExecStart --value temporal")
    assert on_server("stat -c '%a %U:%G' /etc/temporal/temporal.env").strip() == "640 root:temporal"
    assert converge(server_mode)["success"] == 0
