"""The readback deploy against the local lane, over SSH as `ops` with sudo: the packet it writes matches
the schema and holds what the services themselves report, its envelope verifies, a program changed on a
host is flagged red (and fails the drift gate) until a converge repairs it, and the HTML page shows the
same status table once Chromium has rendered it."""

from __future__ import annotations

import html.parser
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from gpuaas.backup import sets, store
from gpuaas.evidence.collect import profile_digest
from gpuaas.evidence.packet import Packet, validate
from gpuaas.evidence.written import envelopes, evidence_dir
from gpuaas.profile import REPO_ROOT, load_profile
from roles.nats.config import PROGRAM_LINK as NATS_LINK
from tests.hosttools.runs import pyinfra
from tests.local_variant import inventory, newest_packet, packets
from tests.local_variant import packet_item as item
from tests.local_variant import read_back as read_back_variant

pytestmark = pytest.mark.hosts

#: Screenshots of the evidence page, kept for people to look at after a run.
ARTIFACTS = REPO_ROOT / "build" / "test-artifacts"


def on_host(command: str, name: str = "local-server") -> str:
    done = subprocess.run(["docker", "exec", name, "sh", "-c", command], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def read_back(**env: str) -> tuple[subprocess.CompletedProcess, Packet]:
    """The readback as the operator runs it, with `env`; its result (checked by the caller) and packet."""
    before = packets()
    result = pyinfra("--json", "inventories/local.py", "deploys/readback.py", env=env, timeout=600)
    assert packets() - before, (result.stdout + result.stderr)[-3000:]
    return result, newest_packet(before)


@pytest.fixture(scope="module")
def converged(local_hosts):
    result = pyinfra("inventories/local.py", "deploys/data.py")
    assert result.returncode == 0, result.stderr[-2000:]
    return load_profile("local")


def test_the_packet_matches_the_schema_and_holds_what_the_services_report(converged):
    profile = converged
    result, packet = read_back(GPUAAS_UAT_PACKAGE="https://uat.example.com/p/7", GPUAAS_PORTAL_BUILD="portal-1234")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["results"]["totals"]["success"] == 0  # it changed nothing
    assert validate(packet.model_dump(mode="json", by_alias=True)) == []
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
    assert packet.source.sha == head and packet.profile.digest == profile_digest(profile)
    assert (packet.inputs.uat_package, packet.inputs.portal_build) == ("https://uat.example.com/p/7", "portal-1234")

    # Each version as the service's own program prints it on the host.
    nats = on_host(f"{NATS_LINK} --version")  # nats-server: v2.15.1
    assert item(packet, "NATS JetStream").observed["version"] == nats.rsplit(" v", 1)[1]
    bao = on_host("/usr/local/bin/bao version")  # OpenBao v2.7.2 (...)
    assert item(packet, "OpenBao").observed["version"] == bao.split()[1].lstrip("v")
    redis = on_host("redis-server --version")  # Redis server v=7.0.15 sha=...
    assert item(packet, "Redis").observed["version"] == redis.split("v=", 1)[1].split()[0]
    postgres = on_host("runuser -u postgres -- psql -XAtc 'SHOW server_version'")  # 15.18 (Debian ...)
    assert item(packet, "PostgreSQL").observed["version"].startswith(f"PostgreSQL {postgres.split()[0]} ")
    for name in ("NATS JetStream", "OpenBao", "Redis", "PostgreSQL", "Temporal"):
        assert item(packet, name).status.value == "ok", item(packet, name)

    for node in profile.hosts:
        (read,) = [h for h in packet.hosts if h.name == node.name]
        assert read.kernel == on_host("uname -r", node.name) and read.os == "Debian GNU/Linux 12 (bookworm)"
    nats_artifact = next(a for a in packet.artifacts if a.name == "nats-server")
    program = on_host(f"sha256sum < $(readlink -f {NATS_LINK})").split()[0]
    assert [(p.host, p.sha256, p.status.value) for p in nats_artifact.installed] == [("local-server", program, "ok")]
    assert nats_artifact.sha256 == profile.artifacts["nats-server"].sha256
    # What the profile leaves off is blocked, with the reason naming the profile's field.
    assert any(line.startswith("Keycloak: services.keycloak.enabled is false") for line in packet.blocked)

    public = REPO_ROOT / "build" / "local" / "evidence-public.pem"
    key = subprocess.run(["gpuaas", "evidence", "public-key", "local"], cwd=REPO_ROOT, capture_output=True, text=True)
    public.write_text(key.stdout)
    told = subprocess.run(
        ["gpuaas", "evidence", "verify", str(envelopes("local")[0]), "--key", str(public)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert told.returncode == 0 and "verified, signed by key" in told.stdout, told.stderr
    assert f"nats-server sha256:{profile.artifacts['nats-server'].sha256}" in told.stdout


def test_the_packet_goes_to_the_bucket_when_the_profile_asks_and_no_backup_set_is_confused(converged, tmp_path):
    profile = converged
    uploading = inventory(tmp_path, {}, {}, evidence={"upload": True})
    packet = read_back_variant(uploading)
    s3 = store.client(profile)
    stamp = packet.read_at.replace("-", "").replace(":", "")
    listed = s3.list_objects_v2(Bucket=profile.backup.bucket, Prefix=f"evidence/local/{stamp}")
    keys = sorted(entry["Key"] for entry in listed.get("Contents", []))
    assert keys == [f"evidence/local/{stamp}{suffix}" for suffix in (".dsse.json", ".html", ".json", ".md")]
    local = evidence_dir("local") / f"{stamp}.json"
    body = s3.get_object(Bucket=profile.backup.bucket, Key=f"evidence/local/{stamp}.json")["Body"].read()
    assert body == local.read_bytes()
    # Backup sets live under ENV/; the packets beside them are never taken for one.
    assert not any(set_id.startswith("evidence") for set_id in sets.list_sets(s3, profile.backup.bucket, "local"))


class StatusTable(html.parser.HTMLParser):
    """The rendered page's item rows: (layer, status, item, host, colour the browser computed)."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self.layer = None
        self.row: list[str] | None = None
        self.cell: list[str] | None = None
        self.colour = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.layer = attrs.get("data-layer")
        elif tag == "tr" and attrs.get("class") == "item":
            self.row = [self.layer]
        elif tag == "td" and self.row is not None:
            self.cell = []
            self.colour = attrs.get("data-colour", self.colour)

    def handle_endtag(self, tag):
        if tag == "td" and self.row is not None and self.cell is not None:
            self.row.append("".join(self.cell).strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.rows.append([*self.row[:4], self.colour])
            self.row, self.colour = None, ""

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def rendered(page: Path, screenshot: Path) -> StatusTable:
    """The page as headless Chromium renders it: each status cell tagged with the background colour the
    browser computed for it; a screenshot of it kept at `screenshot`."""
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed (gpuaas local setup installs it)"
    probe = page.with_name(page.stem + ".probe.html")
    probe.write_text(
        page.read_text().replace(
            "</body>",
            "<script>for (const c of document.querySelectorAll('td.status')) "
            "c.dataset.colour = getComputedStyle(c).backgroundColor;</script></body>",
        )
    )
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={page.parent / '.chromium'}",
    ]
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [chromium, *flags, f"--screenshot={screenshot}", "--window-size=1280,2400", page.as_uri()],
        capture_output=True,
        check=True,
        timeout=120,
    )
    probe.unlink()
    table = StatusTable()
    table.feed(dom)
    return table


GREEN, AMBER, RED = "rgb(214, 245, 214)", "rgb(255, 230, 191)", "rgb(255, 214, 214)"


def test_a_changed_program_is_red_fails_the_gate_and_is_repaired(converged):
    program = on_host(f"readlink -f {NATS_LINK}")
    # A different file at the program's path, as a hand-copied binary would be (a new inode: the
    # running server keeps its own).
    on_host(f"cp {program} {program}.x && printf x >> {program}.x && mv {program}.x {program}")
    try:
        result, packet = read_back()
        assert result.returncode == 0, result.stderr[-3000:]
        nats = next(a for a in packet.artifacts if a.name == "nats-server")
        assert nats.status.value == "drift" and nats.installed[0].sha256 == on_host(f"sha256sum < {program}").split()[0]
        assert packet.status.value in ("drift", "failed")
        assert any(line.startswith("artifact nats-server 2.15.1: local-server:") for line in packet.drifted())

        page = evidence_dir("local") / f"{packet.read_at.replace('-', '').replace(':', '')}.html"
        table = rendered(page, ARTIFACTS / "evidence-page-drift.png")
        rows = {(row[1], row[2], row[3]): row for row in table.rows}
        expected = {(i.status.value, i.name, i.host or "controller") for i in packet.items}
        assert set(rows) == expected
        assert rows[("drift", "artifact nats-server 2.15.1", "controller")][4] == RED
        assert rows[("ok", "PostgreSQL", "local-server")][0] == "data services"
        assert rows[("ok", "PostgreSQL", "local-server")][4] == GREEN
        assert all(row[4] == AMBER for row in table.rows if row[1] == "blocked")
        shot = ARTIFACTS / "evidence-page-drift.png"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000

        gated, _ = read_back(GPUAAS_DRIFT_GATE="fail")
        assert gated.returncode != 0
        assert "drift gate: 1 differ from the profile: artifact nats-server 2.15.1" in gated.stderr
    finally:
        repaired = pyinfra("inventories/local.py", "deploys/data.py")
        assert repaired.returncode == 0, repaired.stderr[-2000:]
    result, packet = read_back(GPUAAS_DRIFT_GATE="fail")
    assert result.returncode == 0, result.stderr[-3000:]
    assert next(a for a in packet.artifacts if a.name == "nats-server").status.value == "ok"
