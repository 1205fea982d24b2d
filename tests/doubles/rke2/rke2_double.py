#!/usr/bin/python3
"""A test double of RKE2's `rke2` program (not RKE2), keeping the contract roles/rke2 relies on.

    rke2 --version                  `rke2 version VERSION (double)`
    rke2 server                     reads /etc/rancher/rke2/config.yaml; the first server (no `server:`)
                                    writes the node token and /etc/rancher/rke2/rke2.yaml, installs kubectl
                                    under /var/lib/rancher/rke2/bin, answers the supervisor on 9345 and
                                    /readyz and the node API on 6443 (HTTPS); a joining server registers
                                    with `server:` like an agent
    rke2 etcd-snapshot save --name N  writes a snapshot file and logs it
    rke2 agent                      joins `server:` over the network with the token of `token-file` and
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
    return {"name": options["node-name"], "role": role, "address": options.get("node-ip", ""), "version": VERSION,
            "labels": options.get("node-label", []), "taints": options.get("node-taint", []),
            "ready": True, "unschedulable": False}  # fmt: skip


def load_nodes() -> dict:
    return json.loads(NODES.read_text()) if NODES.exists() else {}


def save_nodes(nodes: dict) -> None:
    NODES.write_text(json.dumps(nodes, indent=1))


def kubernetes_node(record: dict) -> dict:
    labels = dict(label.split("=", 1) for label in record["labels"])
    labels["node-role.kubernetes.io/control-plane"] = "true" if record["role"] == "server" else None
    return {"metadata": {"name": record["name"], "labels": {k: v for k, v in labels.items() if v is not None}},
            "spec": {"unschedulable": record["unschedulable"], "taints": record["taints"]},
            "status": {"conditions": [{"type": "Ready", "status": "True" if record["ready"] else "False"}],
                       "nodeInfo": {"kubeletVersion": record["version"]},
                       "addresses": [{"type": "InternalIP", "address": record["address"]}]}}  # fmt: skip


def https_server(port: int, handler, certificate: Path, key: Path) -> ThreadingHTTPServer:
    httpd = ThreadingHTTPServer(("0.0.0.0", port), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


class Handler(BaseHTTPRequestHandler):
    tokens: set = set()
    admin: str = ""

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

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/readyz":
            return self.reply(200, "ok")
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
            if request.get("token") not in self.tokens:
                log(f"join-refused {request.get('record', {}).get('name')}")
                return self.reply(401, {"message": "invalid token"})
            record = request["record"]
            with LOCK:
                nodes = load_nodes()
                nodes[record["name"]] = record
                save_nodes(nodes)
            threading.Thread(target=log, args=(f"join {record['name']} {record['role']} {record['version']}",)).start()
            return self.reply(200, {"joined": record["name"]})
        if not self.admin_only():
            return None
        # Node actions of the kubectl double: cordon, uncordon, drain, delete.
        action, name = request.get("action"), request.get("node")
        if action == "delete-secret":
            threading.Thread(target=log, args=(f"delete-secret {name}",)).start()
            return self.reply(200, {action: name})
        with LOCK:
            nodes = load_nodes()
            if name not in nodes:
                return self.reply(404, {"reason": "NotFound"})
            if action in ("cordon", "drain"):
                nodes[name]["unschedulable"] = True
            elif action == "uncordon":
                nodes[name]["unschedulable"] = False
            elif action == "delete":
                del nodes[name]
            save_nodes(nodes)
        threading.Thread(target=log, args=(f"{action} {name}",)).start()
        return self.reply(200, {action: name})


def tokens_from(options: dict) -> set:
    found = set()
    for key in ("token-file", "agent-token-file"):
        if key in options:
            found.add(Path(options[key]).read_text().strip())
    return found


def serve_first_server(options: dict) -> None:
    SERVER_DIR.mkdir(parents=True, exist_ok=True)
    tls = SERVER_DIR / "tls"
    tls.mkdir(exist_ok=True)
    certificate, key = tls / "serving.crt", tls / "serving.key"
    if not certificate.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(key), "-out", str(certificate), "-days", "365", "-subj",
                        "/CN=rke2-double", "-addext", "subjectAltName=IP:127.0.0.1," + ",".join(
                            ("IP:" if n[0].isdigit() else "DNS:") + n for n in options.get("tls-san", []))],
                       check=True, capture_output=True)  # fmt: skip
    cluster_token = Path(options["token-file"]).read_text().strip()
    (SERVER_DIR / "token").write_text(cluster_token + "\n")
    ca_hash = hashlib.sha256(certificate.read_bytes()).hexdigest()
    (SERVER_DIR / "node-token").write_text(f"K10{ca_hash}::server:{cluster_token}\n")
    admin_file = SERVER_DIR / "double-admin-token"
    if not admin_file.exists():
        admin_file.write_text(secrets.token_hex(16))
    Handler.tokens, Handler.admin = tokens_from(options), admin_file.read_text()
    import base64

    kubeconfig = {"apiVersion": "v1", "kind": "Config",
                  "clusters": [{"name": "default", "cluster": {"server": "https://127.0.0.1:6443",
                                "certificate-authority-data": base64.b64encode(certificate.read_bytes()).decode()}}],
                  "users": [{"name": "default", "user": {"token": Handler.admin}}],
                  "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
                  "current-context": "default"}  # fmt: skip
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


def join(options: dict, role: str) -> None:
    """Register with `server:` using the token; exit 1 on a refused token or an unreachable server."""
    url = options.get("server", "")
    token = Path(options["token-file"]).read_text().strip()
    payload = json.dumps({"token": token, "record": node_record(options, role)}).encode()
    context = ssl._create_unverified_context()  # the double's CA is not distributed to joining nodes
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(urllib.request.Request(f"{url}/v1-rke2/join", payload, method="POST"),
                                   timeout=5, context=context)  # fmt: skip
            return
        except urllib.error.HTTPError as refused:
            sys.exit(f"failed to join {url}: {refused.code} {refused.reason}: token is not valid")
        except (urllib.error.URLError, OSError) as unreachable:
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
