"""Build the Temporal doubles' artifacts, laid out like the official ones: the release tarball
(temporal-server, temporal-sql-tool) and the source tarball (schema/postgresql/v12/...)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

HERE = Path(__file__).parent
VERSION = "0.0.0"
#: A tiny versioned schema per store: two versions, so update-schema has an order to keep.
SCHEMA = {
    "temporal": {
        "1.0": "CREATE TABLE namespaces (id BYTEA PRIMARY KEY, name TEXT UNIQUE NOT NULL);\n",
        "1.1": "CREATE TABLE executions (shard_id INT NOT NULL, run_id BYTEA NOT NULL);\n",
    },
    "visibility": {
        "1.0": "CREATE TABLE executions_visibility (run_id TEXT PRIMARY KEY);\n",
        "1.1": "ALTER TABLE executions_visibility ADD COLUMN status INT;\n",
    },
}


def _tarball(path: Path, members: dict[str, tuple[bytes, int]]) -> Path:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as archive:
        for name, (body, mode) in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(body), mode, 1767225600
            archive.addfile(info, io.BytesIO(body))
    return path


def build_release(directory: Path) -> Path:
    """temporal_0.0.0_linux_amd64.tar.gz with the two programs, like the release asset."""
    programs = {"temporal-server": "temporal_server.py", "temporal-sql-tool": "temporal_sql_tool.py"}
    members = {name: ((HERE / source).read_bytes(), 0o755) for name, source in programs.items()}
    return _tarball(directory / f"temporal_{VERSION}_linux_amd64.tar.gz", members)


def build_schema_source(directory: Path) -> Path:
    """v0.0.0.tar.gz with temporal-0.0.0/schema/postgresql/v12/STORE/versioned/vX.Y/, like the tag's source."""
    members = {}
    for store, versions in SCHEMA.items():
        base = f"temporal-{VERSION}/schema/postgresql/v12/{store}/versioned"
        for version, sql in versions.items():
            manifest = {
                "CurrVersion": version,
                "MinCompatibleVersion": "1.0",
                "Description": f"{store} {version}",
                "SchemaUpdateCqlFiles": ["schema.sql"],
            }
            members[f"{base}/v{version}/manifest.json"] = (json.dumps(manifest).encode(), 0o644)
            members[f"{base}/v{version}/schema.sql"] = (sql.encode(), 0o644)
    return _tarball(directory / f"v{VERSION}.tar.gz", members)
