"""roles/temporal in server mode on the local data host, with the Temporal doubles' artifacts
(tests/doubles/temporal: temporal-server and temporal-sql-tool doubles, a small versioned schema),
and with the official ones when TEMPORAL_RELEASE (temporal_X.Y.Z_linux_amd64.tar.gz),
TEMPORAL_SQL_TOOL (the archive that ships temporal-sql-tool; it may be the same file) and
TEMPORAL_SCHEMA_SOURCE (the tag's source tarball vX.Y.Z.tar.gz) point at them.

What is real here: the pins and their verification, PostgreSQL with both databases and their owners,
the schema walk recorded in schema_version, the unit and its environment file, the namespace
registration through the temporal CLI, and a gRPC frontend answering `operator cluster health`.
"""

from __future__ import annotations

import os
import re
import tarfile
from pathlib import Path

import pytest

from gpuaas.profile import REPO_ROOT, load_profile
from roles.temporal.config import health_command
from tests.doubles.temporal import SCHEMA, VERSION, build_release, build_schema_source
from tests.local_variant import converge, inventory, on_server, packet_item, pin, read_back

pytestmark = pytest.mark.hosts
RELEASES = "https://github.com/temporalio/temporal/releases/download"

OFFICIAL = {
    "release": os.environ.get("TEMPORAL_RELEASE", ""),
    "sql_tool": os.environ.get("TEMPORAL_SQL_TOOL", ""),
    "source": os.environ.get("TEMPORAL_SCHEMA_SOURCE", ""),
}


def server_mode_inventory(directory: Path, version: str, release: Path, sql_tool: Path, source: Path) -> Path:
    """The local profile in server mode with the given artifacts pinned by their sha256."""
    artifacts = {
        "temporal-server": pin(
            "temporal-server", release, version, f"{RELEASES}/v{version}/{release.name}", binary="temporal-server"
        ),
        "temporal-sql-tool": pin(
            "temporal-sql-tool", sql_tool, version, f"{RELEASES}/v{version}/{sql_tool.name}", binary="temporal-sql-tool"
        ),
        "temporal-schema": pin(
            "temporal-schema",
            source,
            version,
            f"https://github.com/temporalio/temporal/archive/refs/tags/{source.name}",
        ),
    }
    return inventory(directory, artifacts, {"temporal": {"mode": "server", "namespaces": ["platform", "billing"]}})


@pytest.fixture
def back_to_dev_mode(local_hosts):
    yield
    # The tests that follow expect the local profile's dev mode.
    converge(REPO_ROOT / "inventories" / "local.py")


def schema_version(database: str) -> str:
    query = f"SELECT curr_version FROM schema_version WHERE db_name = '{database}'"
    return on_server(f'runuser -u postgres -- psql -XAtq -d {database} -c "{query}"').strip()


def assert_server_mode_serves(server_mode: Path, newest: str) -> None:
    converge(server_mode)
    profile = load_profile(server_mode.with_suffix(".yml"))
    settings, data = profile.services.temporal, profile.group("data")[0]
    assert schema_version(settings.database) == newest
    assert schema_version(settings.visibility_database) == newest
    assert "SERVING" in on_server(health_command(settings, str(data.address)))
    namespaces = on_server(f"temporal operator namespace list --address {data.address}:{settings.port}")
    assert "platform" in namespaces and "billing" in namespaces
    assert "--env production start" in on_server("systemctl show -p ExecStart --value temporal")
    assert on_server("stat -c '%a %U:%G' /etc/temporal/temporal.env").strip() == "640 root:temporal"
    assert converge(server_mode)["success"] == 0
    temporal = packet_item(read_back(server_mode), "Temporal")
    assert temporal.status.value == "ok" and "(schema current)" in temporal.message, temporal
    assert temporal.observed["schema"] == {
        database: {"current": newest, "available": newest}
        for database in (settings.database, settings.visibility_database)
    }


def test_server_mode_with_the_doubles_sets_up_schemas_registers_namespaces_and_serves(back_to_dev_mode, tmp_path):
    release, source = build_release(tmp_path), build_schema_source(tmp_path)
    newest = max(SCHEMA["temporal"], key=lambda version: tuple(map(int, version.split("."))))
    assert_server_mode_serves(server_mode_inventory(tmp_path, VERSION, release, release, source), newest)


@pytest.mark.skipif(
    not all(OFFICIAL.values()),
    reason="set TEMPORAL_RELEASE, TEMPORAL_SQL_TOOL and "
    "TEMPORAL_SCHEMA_SOURCE to the official artifacts to run server mode for real",
)
def test_server_mode_with_the_official_artifacts(back_to_dev_mode, tmp_path):
    release, sql_tool, source = (Path(OFFICIAL[name]) for name in ("release", "sql_tool", "source"))
    version = re.search(r"(\d+\.\d+\.\d+)", release.name).group(1)
    with tarfile.open(source) as archive:
        versioned = [m.name for m in archive if "/schema/postgresql/v12/temporal/versioned/v" in m.name]
    newest = max(
        (name.split("/versioned/")[1].split("/")[0].lstrip("v") for name in versioned),
        key=lambda v: tuple(map(int, v.split("."))),
    )
    assert_server_mode_serves(server_mode_inventory(tmp_path, version, release, sql_tool, source), newest)
