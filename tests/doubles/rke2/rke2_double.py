#!/usr/bin/python3
"""A test double of RKE2's `rke2` program (not RKE2), keeping the contract roles/rke2 relies on.

    rke2 --version                  `rke2 version VERSION (double)`
    rke2 server                     reads /etc/rancher/rke2/config.yaml; the first server (no `server:`)
                                    makes the cluster CA (server/tls/server-ca.crt) and a serving
                                    certificate it signs, writes the secure tokens RKE2 writes
                                    (server/token and node-token `K10<sha256 of the CA>::server:SECRET`,
                                    server/agent-token `K10<...>::node:SECRET`, 0600) and
                                    /etc/rancher/rke2/rke2.yaml, installs kubectl under
                                    /var/lib/rancher/rke2/bin, answers the supervisor on 9345 (/cacerts,
                                    the join) and /readyz and the node API on 6443 (HTTPS); a joining
                                    server registers with `server:` like an agent
    rke2 etcd-snapshot save --name N  writes a snapshot file and logs it
    rke2 agent                      joins `server:` over the network with the token of `token-file`: a
                                    secure token (K10...) makes it fetch /cacerts, REFUSE a CA whose
                                    sha256 is not the token's, and verify the server's certificate with
                                    that CA; a short token trusts the server unverified, as RKE2 does. It
                                    FAILS on a wrong token or an unreachable server; serves the kubelet's
                                    /healthz on 127.0.0.1:10248
Both tell systemd they are ready (Type=notify) and log what they do to the server's double.log.
"""

import hashlib
import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

VERSION = "@VERSION@"
CONFIG = Path("/etc/rancher/rke2/config.yaml")
SERVER_DIR = Path("/var/lib/rancher/rke2/server")
NODES = SERVER_DIR / "double-nodes.json"
LOG = SERVER_DIR / "double.log"
KUBECONFIG = Path("/etc/rancher/rke2/rke2.yaml")
KUBECTL = Path("/var/lib/rancher/rke2/bin/kubectl")
LOCK = threading.Lock()


def config() -> dict:
    """The subset of YAML config.yaml uses: `key: scalar` and `key:` followed by `- item` lines."""
    values, current = {}, None
    for line in CONFIG.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith("- ") and current:
            values.setdefault(current, []).append(line[2:].strip().strip("'\""))
            continue
        key, _, value = line.partition(":")
        current, value = key.strip(), value.strip().strip("'\"")
        if value:
            values[current] = value
    return values


def log(event: str) -> None:
    with LOCK, LOG.open("a") as handle:
        handle.write(f"{time.time():.3f} {event}\n")


def notify_ready() -> None:
    address = os.environ.get("NOTIFY_SOCKET")
    if address:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect("\0" + address[1:] if address.startswith("@") else address)
            sock.send(b"READY=1")


def node_record(options: dict, role: str) -> dict:
    return {
        "name": options["node-name"],
        "role": role,
        "address": options.get("node-ip", ""),
        "version": VERSION,
        "labels": options.get("node-label", []),
        "taints": options.get("node-taint", []),
        "ready": True,
        "unschedulable": False,
    }


def load_nodes() -> dict:
    return json.loads(NODES.read_text()) if NODES.exists() else {}


def save_nodes(nodes: dict) -> None:
    NODES.write_text(json.dumps(nodes, indent=1))


def kubernetes_node(record: dict) -> dict:
    labels = dict(label.split("=", 1) for label in record["labels"])
    labels["node-role.kubernetes.io/control-plane"] = "true" if record["role"] == "server" else None
    return {
        "metadata": {"name": record["name"], "labels": {k: v for k, v in labels.items() if v is not None}},
        "spec": {"unschedulable": record["unschedulable"], "taints": record["taints"]},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if record["ready"] else "False"}],
            "nodeInfo": {"kubeletVersion": record["version"]},
            "addresses": [{"type": "InternalIP", "address": record["address"]}],
        },
    }


def https_server(port: int, handler, certificate: Path, key: Path) -> ThreadingHTTPServer:
    httpd = ThreadingHTTPServer(("0.0.0.0", port), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


class Handler(BaseHTTPRequestHandler):
    #: `server:SECRET` and `node:SECRET`: what a joining node may present (a short token is its SECRET).
    credentials: set = set()
    admin: str = ""
    ca: bytes = b""

    def log_message(self, *args) -> None:
        pass

    def reply(self, code: int, body) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self) -> dict:
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")

    def admin_only(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {self.admin}":
            self.reply(401, {"message": "Unauthorized"})
            return False
        return True

    def accepted(self, presented: str) -> bool:
        user, _, secret = presented.rpartition(":")
        candidates = {f"{u}:{secret}" for u in (("server", "node") if not user else (user,))}
        return bool(candidates & self.credentials)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/readyz":
            return self.reply(200, "ok")
        if self.path == "/cacerts":
            return self.reply(200, self.ca.decode())
        if not self.admin_only():
            return None
        nodes = load_nodes()
        if self.path == "/api/v1/nodes":
            return self.reply(200, {"kind": "NodeList", "items": [kubernetes_node(n) for n in nodes.values()]})
        name = self.path.rsplit("/", 1)[-1]
        return (
            self.reply(200, kubernetes_node(nodes[name])) if name in nodes else self.reply(404, {"reason": "NotFound"})
        )

    def do_POST(self) -> None:  # noqa: N802
        request = self.body()
        if self.path == "/v1-rke2/join":
            if not self.accepted(request.get("credentials", "")):
                log(f"join-refused {request.get('record', {}).get('name')}")
                return self.reply(401, {"message": "invalid token"})
            record = request["record"]
            with LOCK:
                nodes = load_nodes()
                if record["name"] in nodes:
                    # As a kubelet's: its node labels apply when the node registers, not when it comes back.
                    record["labels"] = nodes[record["name"]]["labels"]
                nodes[record["name"]] = record
                save_nodes(nodes)
            threading.Thread(target=log, args=(f"join {record['name']} {record['role']} {record['version']}",)).start()
            return self.reply(200, {"joined": record["name"]})
        if not self.admin_only():
            return None
        # Node actions of the kubectl double: cordon, uncordon, drain, delete.
        action, name = request.get("action"), request.get("node")
        if action in ("delete-secret", "delete-manifest", "delete-addon"):
            threading.Thread(target=log, args=(f"{action} {name}",)).start()
            return self.reply(200, {action: name})
        with LOCK:
            nodes = load_nodes()
            if name not in nodes:
                return self.reply(404, {"reason": "NotFound"})
            if action in ("cordon", "drain"):
                nodes[name]["unschedulable"] = True
            elif action == "uncordon":
                nodes[name]["unschedulable"] = False
            elif action == "label":
                key = request["label"].split("=", 1)[0]
                labels = [entry for entry in nodes[name]["labels"] if entry.split("=", 1)[0] != key]
                nodes[name]["labels"] = [*labels, request["label"]]
            elif action == "delete":
                del nodes[name]
            save_nodes(nodes)
        threading.Thread(target=log, args=(f"{action} {name}",)).start()
        return self.reply(200, {action: name})


def accepted_credentials(options: dict) -> set:
    """`server:CLUSTER-TOKEN` and `node:AGENT-TOKEN` (the agent token is the cluster token when unset)."""
    cluster = Path(options["token-file"]).read_text().strip()
    agent = Path(options["agent-token-file"]).read_text().strip() if "agent-token-file" in options else cluster
    return {f"server:{cluster}", f"node:{agent}"}


def openssl(*arguments: str) -> None:
    subprocess.run(["openssl", *arguments], check=True, capture_output=True)


def certificates(tls: Path, names: list) -> tuple:
    """The cluster CA (made once, like RKE2's) and a serving certificate for `names` that it signs."""
    ca, ca_key = tls / "server-ca.crt", tls / "server-ca.key"
    curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    made = not ca.exists()
    if made:
        openssl(
            "req",
            "-x509",
            *curve,
            "-keyout",
            str(ca_key),
            "-out",
            str(ca),
            "-days",
            "3650",
            "-subj",
            "/CN=rke2-server-ca@double",
        )
    certificate, key, request, extensions = (tls / n for n in ("serving.crt", "serving.key", "serving.csr", "san.ext"))
    if made or not certificate.exists():
        sans = ["IP:127.0.0.1", *(("IP:" if n[0].isdigit() else "DNS:") + n for n in names)]
        extensions.write_text(f"subjectAltName={','.join(sans)}\n")
        openssl("req", "-new", *curve, "-keyout", str(key), "-out", str(request), "-subj", "/CN=rke2-double")
        openssl(
            "x509",
            "-req",
            "-in",
            str(request),
            "-CA",
            str(ca),
            "-CAkey",
            str(ca_key),
            "-CAcreateserial",
            "-days",
            "365",
            "-extfile",
            str(extensions),
            "-out",
            str(certificate),
        )
    return ca, certificate, key


def private(path: Path, text: str) -> None:
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text)


def serve_first_server(options: dict) -> None:
    SERVER_DIR.mkdir(parents=True, exist_ok=True)
    tls = SERVER_DIR / "tls"
    tls.mkdir(mode=0o700, exist_ok=True)
    ca, certificate, key = certificates(tls, options.get("tls-san", []))
    ca_hash = hashlib.sha256(ca.read_bytes()).hexdigest()
    cluster_token = Path(options["token-file"]).read_text().strip()
    for name in ("token", "node-token"):
        private(SERVER_DIR / name, f"K10{ca_hash}::server:{cluster_token}\n")
    if "agent-token-file" in options:
        agent_token = Path(options["agent-token-file"]).read_text().strip()
        private(SERVER_DIR / "agent-token", f"K10{ca_hash}::node:{agent_token}\n")
    admin_file = SERVER_DIR / "double-admin-token"
    if not admin_file.exists():
        admin_file.write_text(secrets.token_hex(16))
    Handler.credentials, Handler.admin = accepted_credentials(options), admin_file.read_text()
    Handler.ca = ca.read_bytes()
    import base64

    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "default",
                "cluster": {
                    "server": "https://127.0.0.1:6443",
                    "certificate-authority-data": base64.b64encode(ca.read_bytes()).decode(),
                },
            }
        ],
        "users": [{"name": "default", "user": {"token": Handler.admin}}],
        "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
        "current-context": "default",
    }
    KUBECONFIG.parent.mkdir(parents=True, exist_ok=True)
    KUBECONFIG.write_text(json.dumps(kubeconfig, indent=2))
    KUBECONFIG.chmod(int(options.get("write-kubeconfig-mode", "0600"), 8))
    KUBECTL.parent.mkdir(parents=True, exist_ok=True)
    KUBECTL.write_text((Path(__file__).parent.parent / "share" / "rke2" / "kubectl-double").read_text())
    KUBECTL.chmod(0o755)
    with LOCK:
        nodes = load_nodes()
        nodes[options["node-name"]] = node_record(options, "server")
        save_nodes(nodes)
    log(f"start server {options['node-name']} {VERSION}")
    https_server(9345, Handler, certificate, key)
    https_server(6443, Handler, certificate, key)


def verified_context(url: str, token: str) -> ssl.SSLContext:
    """A secure token's CA check, as RKE2's agent makes it: the CA the server offers on /cacerts must have
    the token's sha256, and then the server's certificate must be signed by it. A short token trusts
    whatever answers."""
    if not token.startswith("K10"):
        return ssl._create_unverified_context()
    expected = token[3:].split("::", 1)[0]
    offered = urllib.request.urlopen(f"{url}/cacerts", timeout=5, context=ssl._create_unverified_context()).read()
    actual = hashlib.sha256(offered).hexdigest()
    if actual != expected:
        sys.exit(
            f"failed to join {url}: token CA hash does not match the Cluster CA certificate hash: "
            f"{expected} != {actual}"
        )
    return ssl.create_default_context(cadata=offered.decode())


def join(options: dict, role: str) -> None:
    """Register with `server:` using the token; exit 1 on a CA that is not the token's, a refused token
    or an unreachable server."""
    url = options.get("server", "")
    token = Path(options["token-file"]).read_text().strip()
    presented = token.split("::", 1)[1] if token.startswith("K10") else token
    payload = json.dumps({"credentials": presented, "record": node_record(options, role)}).encode()
    deadline = time.time() + 60
    while True:
        try:
            context = verified_context(url, token)
            urllib.request.urlopen(
                urllib.request.Request(f"{url}/v1-rke2/join", payload, method="POST"), timeout=5, context=context
            )
            return
        except urllib.error.HTTPError as refused:
            sys.exit(f"failed to join {url}: {refused.code} {refused.reason}: token is not valid")
        except (urllib.error.URLError, OSError) as unreachable:
            if isinstance(getattr(unreachable, "reason", None), ssl.SSLCertVerificationError):
                sys.exit(f"failed to join {url}: its certificate is not signed by the token's CA: {unreachable}")
            if time.time() > deadline:
                sys.exit(f"failed to join {url}: {unreachable}")
            time.sleep(1)


def kubelet_healthz() -> None:
    class Healthz(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

    httpd = ThreadingHTTPServer(("127.0.0.1", 10248), Healthz)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()


def main() -> None:
    arguments = sys.argv[1:]
    if arguments[:1] == ["--version"]:
        print(f"rke2 version {VERSION} (double)\ngo version go1.22 (double)")
        return
    if arguments[:2] == ["etcd-snapshot", "save"]:
        name = arguments[arguments.index("--name") + 1] if "--name" in arguments else "on-demand"
        snapshots = SERVER_DIR / "db" / "snapshots"
        snapshots.mkdir(parents=True, exist_ok=True)
        (snapshots / f"{name}-double").write_text(json.dumps(load_nodes()))
        log(f"snapshot {name}")
        print(f"Snapshot {name} saved.")
        return
    role = arguments[0] if arguments else ""
    if role not in ("server", "agent"):
        sys.exit("usage: rke2 server|agent")
    options = config()
    if role == "server" and "server" not in options:
        serve_first_server(options)
    else:
        join(options, role)
        log_target = options["server"]
        print(f"joined {log_target} as {options['node-name']}", flush=True)
    kubelet_healthz()
    notify_ready()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
