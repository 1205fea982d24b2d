"""The census of the local lane's listening sockets. On every host, converged, each TCP and UDP socket
`ss` shows is one the profile declares (gpuaas.listeners), on the address it names or a narrower one;
what the profile declares of the data services does listen; and each port that must refuse clients
without credentials is shown refusing them, from the other host of the lane network."""

from __future__ import annotations

import ipaddress
import json
import socket
import struct
import subprocess
import time
from urllib.parse import urlsplit

import pytest

from gpuaas.backup import store
from gpuaas.listeners import Listener, host_listeners, socket_address, unexpected
from gpuaas.profile import REPO_ROOT, Profile
from roles.object_store.settings import GRPC_OFFSET
from tests.lane import lane_host

pytestmark = pytest.mark.hosts

SERVER, OTHER = "local-server", "local-gpu-1"
#: The roles whose every declared port listens on a converged local lane (RKE2 is not pinned there and
#: Keycloak's zip neither; the operating system's own listeners may or may not be there).
DEPLOYED_ROLES = ("postgres", "redis", "nats", "openbao", "object_store", "temporal")


def converge() -> dict:
    """Run the site deploy on the local lane; its totals."""
    result = subprocess.run(
        ["pyinfra", "-y", "--json", "inventories/local.py", "deploys/site.py"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)["results"]["totals"]


@pytest.fixture(scope="module")
def lane(local_hosts) -> Profile:
    """The local lane, converged; the second run must change nothing."""
    converge()
    assert converge()["success"] == 0
    return local_hosts


def listening(profile: Profile, name: str) -> list[tuple[str, str, int, str]]:
    """(protocol, address, port, process) of every listening TCP and UDP socket of host `name`."""
    sockets = []
    for line in lane_host(profile, name).check_output("ss -Htulnp").splitlines():
        protocol, _state, _received, _sent, local, _peer, *process = line.split()
        address, port = local.rsplit(":", 1)
        sockets.append((protocol, address, int(port), " ".join(process)))
    return sockets


def listens(listener: Listener, found: list[tuple[str, str, int, str]]) -> bool:
    """Whether one of the sockets `found` is `listener`."""
    return any(listener.admits(protocol, address, port, process) for protocol, address, port, process in found)


def on(profile: Profile, name: str, command: str) -> tuple[int, str]:
    """Exit status and output of `command` on host `name`, as the operator runs it (SSH, sudo)."""
    result = lane_host(profile, name).run(command)
    return result.rc, result.stdout + result.stderr


def reaches(profile: Profile, address: str, port: int) -> bool:
    """Whether the other host opens a TCP connection to address:port."""
    return on(profile, OTHER, f"timeout 5 bash -c 'exec 3<>/dev/tcp/{address}/{port}'")[0] == 0


def strays(profile: Profile, name: str) -> list[str]:
    """The listening sockets of host `name` the profile does not declare, as `ss` shows them."""
    expected = host_listeners(profile, profile.host(name))
    found = listening(profile, name)
    assert found, "ss showed no listening socket at all"
    return [
        f"{protocol} {address}:{port} {process}"
        for protocol, address, port, process in found
        if unexpected(expected, protocol, address, port, process)
    ]


@pytest.mark.parametrize("name", [SERVER, OTHER])
def test_every_listening_socket_is_declared_on_its_address(lane, name):
    assert strays(lane, name) == [], f"{name} listens where the profile declares nothing"


def test_the_data_services_listen_where_the_profile_declares(lane):
    found = listening(lane, SERVER)
    declared = [listener for listener in host_listeners(lane, lane.host(SERVER)) if listener.role in DEPLOYED_ROLES]
    missing = [listener.describe() for listener in declared if not listens(listener, found)]
    assert missing == []
    on_network = {(socket_address(address), port) for _, address, port, _ in found}
    assert (str(lane.host(SERVER).address), lane.services.object_store.s3_port) in on_network


def test_seaweedfs_internal_ports_are_not_reachable_from_the_other_host(lane):
    store, address = lane.services.object_store, str(lane.host(SERVER).address)
    internal = [store.master_port, store.volume_port, store.filer_port]
    internal += [port + GRPC_OFFSET for port in (*internal, store.s3_port)]
    assert reaches(lane, address, store.s3_port), "the S3 port itself must be reachable (the control)"
    assert [port for port in internal if reaches(lane, address, port)] == []


def test_s3_without_keys_is_refused(lane):
    endpoint = urlsplit(str(lane.backup.endpoint))
    for path in ("/", f"/{lane.backup.bucket}/", f"/{lane.backup.bucket}/manifest.json"):
        status, body = on(lane, OTHER, f"curl -s --max-time 5 -w '\\n%{{http_code}}' http://{endpoint.netloc}{path}")
        assert body.strip().endswith("403") and "AccessDenied" in body, (path, body[-300:])


def test_s3_with_the_backup_identity_is_served(lane):
    names = [bucket["Name"] for bucket in store.client(lane).list_buckets()["Buckets"]]
    assert lane.backup.bucket in names


def test_redis_without_its_password_answers_noauth(lane):
    address, port = lane.host(SERVER).address, lane.services.redis.port
    script = f"exec 3<>/dev/tcp/{address}/{port}; printf 'GET anything\\r\\n' >&3; timeout 2 cat <&3"
    _, answer = on(lane, OTHER, f"timeout 5 bash -c {json.dumps(script)}")
    assert answer.startswith("-NOAUTH"), answer


def test_nats_without_credentials_is_an_authorization_violation(lane):
    address, port = lane.host(SERVER).address, lane.services.nats.port
    script = (
        f"exec 3<>/dev/tcp/{address}/{port}; printf 'CONNECT {{\"verbose\":false}}\\r\\nPING\\r\\n' >&3; "
        "timeout 2 cat <&3"
    )
    _, answer = on(lane, OTHER, f"timeout 5 bash -c {json.dumps(script)}")
    assert '"auth_required":true' in answer and "Authorization Violation" in answer, answer[-300:]


def test_openbao_without_a_token_or_client_certificate_is_refused(lane):
    address, settings = lane.host(SERVER).address, lane.services.openbao
    status, answer = on(
        lane, OTHER, f"curl -sk --max-time 5 -w '\\n%{{http_code}}' https://{address}:{settings.port}/v1/sys/mounts"
    )
    assert answer.strip().endswith("403") and "permission denied" in answer, answer[-300:]
    status, answer = on(lane, OTHER, f"curl -sk --max-time 5 https://{address}:{settings.cluster_port}/")
    assert status != 0, "the cluster port answered a client without the cluster's certificate"


def _postgres_startup(address: str, port: int, source: str | None) -> bytes:
    """The first answer of PostgreSQL to a startup message (user platform, no password) sent from `source`."""
    with socket.create_connection((address, port), timeout=5, source_address=(source, 0) if source else None) as conn:
        body = b"user\0platform\0database\0platform\0\0"
        conn.sendall(struct.pack("!ii", 8 + len(body), 196608) + body)
        return conn.recv(4096)


def _default_route_address() -> str:
    """This machine's address on its default route (a UDP socket's connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("198.51.100.1", 9))
        return probe.getsockname()[0]


def test_postgres_asks_for_a_password_inside_pg_hba_and_refuses_outside(lane):
    address, port = str(lane.host(SERVER).address), lane.services.postgres.port
    # From the lane network (inside pg_hba): the server asks for SCRAM before anything else.
    inside = _postgres_startup(address, port, None)
    assert inside[:1] == b"R" and struct.unpack("!i", inside[5:9])[0] == 10 and b"SCRAM-SHA-256" in inside
    # From this machine's own address (the one its default route leaves from; Docker does not rewrite
    # it), outside every network of pg_hba.
    outside_source = _default_route_address()
    networks = (lane.network.node_cidr, lane.network.cluster_cidr)
    assert not any(ipaddress.ip_address(outside_source) in network for network in networks), outside_source
    outside = _postgres_startup(address, port, outside_source)
    assert outside[:1] == b"E" and f'no pg_hba.conf entry for host "{outside_source}"'.encode() in outside, outside


def test_ssh_without_the_lane_key_is_refused(lane):
    address = str(lane.host(SERVER).address)
    result = subprocess.run(
        # No key is offered, and nothing secret is sent: the host's key need not be checked here.
        [
            "ssh",
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityFile=/dev/null",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "ConnectTimeout=5",
            "-p",
            str(lane.connection.port),
            f"{lane.connection.user}@{address}",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0 and "Permission denied" in result.stderr, result.stderr


def test_every_credentialed_network_port_of_the_lane_has_a_refusal_shown_above(lane):
    shown = {
        "connection.port",
        "services.object_store.s3_port",
        "services.redis.port",
        "services.nats.port",
        "services.openbao.port",
        "services.openbao.cluster_port",
        "services.postgres.port",
    }
    deployed: list[Listener] = []
    for name in (SERVER, OTHER):
        found = listening(lane, name)
        deployed += [
            listener
            for listener in host_listeners(lane, lane.host(name))
            if listener.on_network and listener.credentials and listens(listener, found)
        ]
    assert deployed and {listener.field for listener in deployed} <= shown


def test_a_wider_bind_and_a_stopped_socket_are_repaired(lane):
    store = lane.services.object_store
    # Drift: Temporal's Web UI on every address, the S3 socket stopped and disabled.
    on(
        lane,
        SERVER,
        "sed -i 's/--ui-ip 127.0.0.1/--ui-ip 0.0.0.0/' /etc/systemd/system/temporal.service && "
        "systemctl daemon-reload && systemctl restart temporal && "
        "systemctl disable --now seaweedfs-s3.socket",
    )
    wide_ui = f":{lane.services.temporal.ui_port} "
    for _ in range(60):
        if any(wide_ui in stray for stray in strays(lane, SERVER)):
            break
        time.sleep(1)
    assert any(wide_ui in stray for stray in strays(lane, SERVER))
    assert not reaches(lane, str(lane.host(SERVER).address), store.s3_port)
    assert converge()["success"] > 0
    assert strays(lane, SERVER) == []
    assert reaches(lane, str(lane.host(SERVER).address), store.s3_port)
    assert converge()["success"] == 0
