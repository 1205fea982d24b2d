"""A local fake of Cloudflare's v4 API (not Cloudflare) for the official SDK's `base_url`: zones, DNS
records of every type (paginated listings that end with an empty page, filters on name/type/content,
comments and tags, addresses stored in canonical form, the all-or-nothing batch), the zone's SSL
setting and Origin CA certificates. Errors as Cloudflare sends them: 81053 for a CNAME at a name that
holds any record, 81054 for a record at a name that holds a CNAME, 81058 for an identical record;
403/9109 "Invalid access token" for a wrong token (or 401/10000 when `token_status` is 401); 403/10000
"Authentication error" for a write with a read-only token; 429 with Retry-After on demand; and, on
demand, a 5xx or a time-out after a write was applied, or a 5xx before."""

from __future__ import annotations

import ipaddress
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class FakeCloudflare:
    def __init__(self, token: str, zone: str):
        self.token = token
        self.zones = {"zone-1": {"id": "zone-1", "name": zone, "status": "active"}}
        self.records: dict[str, dict] = {}
        self.ssl = "full"
        self.certificates: dict[str, dict] = {}
        self.rate_limited = 0
        #: 403 (9109 "Invalid access token") or 401 (10000 "Authentication error") for a wrong token.
        self.token_status = 403
        #: The token may read but not write (Cloudflare: 403, 10000 "Authentication error").
        self.read_only = False
        #: Seconds a "timeout-after-apply" answer is held back (longer than the client's timeout).
        self.hang_seconds = 3.0
        self._faults: list[tuple[str, str, str]] = []
        self.requests: list[str] = []
        self.bodies: list[str] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/client/v4"

    def close(self) -> None:
        self.server.shutdown()

    def add_record(self, name: str, type: str, content: str, comment: str = "", proxied: bool = False) -> dict:
        record = {
            "id": f"rec-{next(self._ids)}",
            "name": name,
            "type": type,
            "content": content,
            "proxied": proxied,
            "ttl": 1,
            "comment": comment or None,
            "tags": [],
            "proxiable": True,
        }
        if type == "MX":
            record["priority"] = 10
        self.records[record["id"]] = record
        return record

    def fail_next(self, method: str, path_suffix: str, fault: str) -> None:
        """The next `method` request whose path ends with `path_suffix` meets `fault`: "5xx-after-apply"
        (applied, then a 502), "timeout-after-apply" (applied, the answer held back `hang_seconds`) or
        "5xx-before-apply" (a 502, nothing applied)."""
        assert fault in ("5xx-after-apply", "timeout-after-apply", "5xx-before-apply")
        self._faults.append((method, path_suffix, fault))

    def _fault(self, method: str, path: str) -> str | None:
        for index, (wanted_method, suffix, fault) in enumerate(self._faults):
            if method == wanted_method and path.rstrip("/").endswith(suffix):
                del self._faults[index]
                return fault
        return None

    # --- the API -------------------------------------------------------------------------------

    def _problem(self, record: dict, ignore: str | None = None) -> tuple[int, str] | None:
        """Cloudflare's refusals of a record beside the zone's others: a CNAME shares its name with no
        record of any type (TXT and MX included), and no record is added twice."""
        for other in self.records.values():
            if other["id"] == ignore or other["name"] != record["name"]:
                continue
            if other["type"] == record["type"] and other["content"] == record["content"]:
                return 81058, "An identical record already exists."
            if record["type"] == "CNAME":
                return 81053, "An A, AAAA, or CNAME record with that host already exists."
            if other["type"] == "CNAME":
                return 81054, "A CNAME record with that host already exists."
        return None

    def _create(self, body: dict) -> dict:
        record = {
            "id": f"rec-{next(self._ids)}",
            "proxiable": True,
            "tags": [],
            "ttl": 1,
            "proxied": False,
            "comment": None,
            **_stored(body),
        }
        self.records[record["id"]] = record
        return record

    def handle(self, method: str, path: str, query: dict, body: dict, headers) -> tuple[int, dict, dict]:
        """One request: (status, headers, body). A fault that holds the answer back adds "X-Hang" to the
        headers, which the server strips and waits on."""
        self.requests.append(f"{method} {path}")
        self.bodies.append(json.dumps(body))
        if self.rate_limited > 0:
            self.rate_limited -= 1
            return 429, {"Retry-After": "1"}, _envelope(None, errors=[(971, "Please wait and consider throttling.")])
        if headers.get("Authorization") != f"Bearer {self.token}":
            if self.token_status == 401:
                return 401, {}, _envelope(None, errors=[(10000, "Authentication error")])
            return 403, {}, _envelope(None, errors=[(9109, "Invalid access token")])
        if self.read_only and method != "GET":
            return 403, {}, _envelope(None, errors=[(10000, "Authentication error")])
        fault = self._fault(method, path)
        if fault == "5xx-before-apply":
            return 502, {}, _envelope(None, errors=[(10013, "Bad gateway")])
        code, answer_headers, answer = self._route(method, path, query, body)
        if fault == "5xx-after-apply":
            return 502, {}, _envelope(None, errors=[(10013, "Bad gateway")])
        if fault == "timeout-after-apply":
            return code, {**answer_headers, "X-Hang": str(self.hang_seconds)}, answer
        return code, answer_headers, answer

    def _route(self, method: str, path: str, query: dict, body: dict) -> tuple[int, dict, dict]:
        parts = path.removeprefix("/client/v4/").strip("/").split("/")
        with self._lock:
            if parts[0] == "certificates":
                return self._certificates(method, parts, body, query)
            if parts == ["zones"] and method == "GET":
                zones = [z for z in self.zones.values() if "name" not in query or z["name"] == query["name"]]
                return 200, {}, _page(zones, query)
            zone = parts[1] if len(parts) > 1 else ""
            if zone not in self.zones:
                return (
                    404,
                    {},
                    _envelope(
                        None,
                        errors=[(7003, "Could not route to /zones/..., perhaps your object identifier is invalid?")],
                    ),
                )
            if parts[2:] == ["settings", "ssl"]:
                if method == "PATCH":
                    self.ssl = body["value"]
                return 200, {}, _envelope({"id": "ssl", "value": self.ssl, "editable": True})
            if parts[2:] == ["dns_records"] and method == "GET":
                found = [
                    r
                    for r in self.records.values()
                    if all(k not in query or r[k] == query[k] for k in ("name", "type", "content"))
                ]
                return 200, {}, _page(sorted(found, key=lambda r: (r["name"], r["type"], r["id"])), query)
            if parts[2:] == ["dns_records"] and method == "POST":
                problem = self._problem(_stored(body))
                if problem:
                    return 400, {}, _envelope(None, errors=[problem])
                return 200, {}, _envelope(self._create(body))
            if parts[2:] == ["dns_records", "batch"] and method == "POST":
                return self._batch(body)
            if len(parts) == 4 and parts[2] == "dns_records" and parts[3] in self.records:
                if method == "DELETE":
                    del self.records[parts[3]]
                    return 200, {}, _envelope({"id": parts[3]})
                if method in ("PATCH", "PUT"):
                    self.records[parts[3]].update(_stored(body))
                    return 200, {}, _envelope(self.records[parts[3]])
            return 404, {}, _envelope(None, errors=[(1001, f"no route for {method} {path}")])

    def _certificates(self, method: str, parts: list[str], body: dict, query: dict) -> tuple[int, dict, dict]:
        """Origin CA: sign a CSR (with a fake CA), list, revoke."""
        if method == "POST" and len(parts) == 1:
            certificate_id = f"cert-{next(self._ids)}"
            pem, expires = _sign(body["csr"], body["hostnames"], int(body.get("requested_validity", 5475)))
            issued = {
                "id": certificate_id,
                "certificate": pem,
                "hostnames": body["hostnames"],
                "expires_on": expires,
                "request_type": body["request_type"],
                "requested_validity": body["requested_validity"],
                "csr": body["csr"],
            }
            self.certificates[certificate_id] = issued
            return 200, {}, _envelope(issued)
        if method == "DELETE" and len(parts) == 2 and parts[1] in self.certificates:
            self.certificates[parts[1]]["revoked_at"] = "now"
            return 200, {}, _envelope({"id": parts[1], "revoked_at": "now"})
        if method == "GET" and len(parts) == 1:
            return 200, {}, _page(list(self.certificates.values()), query)
        if method == "GET" and len(parts) == 2 and parts[1] in self.certificates:
            return 200, {}, _envelope(self.certificates[parts[1]])
        return 404, {}, _envelope(None, errors=[(1001, "no such certificate")])

    def _batch(self, body: dict) -> tuple[int, dict, dict]:
        """Deletes, patches, puts, then posts; checked whole first: any error applies nothing."""
        saved = json.loads(json.dumps(self.records))
        result = {"deletes": [], "patches": [], "puts": [], "posts": []}
        try:
            for item in body.get("deletes", []):
                result["deletes"].append(self.records.pop(item["id"]))
            for kind in ("patches", "puts"):
                for item in body.get(kind, []):
                    record = self.records[item["id"]]
                    merged = {**record, **_stored(item)}
                    problem = self._problem(merged, ignore=record["id"])
                    if problem:
                        raise ValueError(problem)
                    record.update(_stored(item))
                    result[kind].append(record)
            for item in body.get("posts", []):
                problem = self._problem(_stored(item))
                if problem:
                    raise ValueError(problem)
                result["posts"].append(self._create(item))
        except (KeyError, ValueError) as failure:
            self.records = saved
            problem = failure.args[0] if isinstance(failure, ValueError) else (81044, "Record does not exist.")
            return 400, {}, _envelope(None, errors=[problem])
        return 200, {}, _envelope(result)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _serve(self, method: str) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                code, headers, payload = fake.handle(method, url.path, query, body, self.headers)
                hang = headers.pop("X-Hang", None)
                if hang:
                    # Applied, but the answer comes after the client gave up waiting.
                    time.sleep(float(hang))
                data = json.dumps(payload).encode()
                self.send_response(code)
                for key, value in {
                    "Content-Type": "application/json",
                    "Content-Length": str(len(data)),
                    **headers,
                }.items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up waiting

            def do_GET(self) -> None:  # noqa: N802
                self._serve("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

            def do_PATCH(self) -> None:  # noqa: N802
                self._serve("PATCH")

            def do_PUT(self) -> None:  # noqa: N802
                self._serve("PUT")

            def do_DELETE(self) -> None:  # noqa: N802
                self._serve("DELETE")

        return Handler


def _sign(csr_pem: str, hostnames: list[str], days: int) -> tuple[str, str]:
    """A certificate for the CSR's key and `hostnames`, from a throwaway CA, like Origin CA issues."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    request = x509.load_pem_x509_csr(csr_pem.encode())
    authority = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    expires = now + datetime.timedelta(days=days)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake Origin CA")]))
        .public_key(request.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(expires)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hostnames]), critical=False)
        .sign(authority, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), expires.strftime(
        "%Y-%m-%d %H:%M:%S +0000 UTC"
    )


def _stored(body: dict) -> dict:
    """A record's fields as Cloudflare keeps them: an address in canonical form (IPv6 compressed)."""
    fields = {k: v for k, v in body.items() if k != "id"}
    if fields.get("type") in ("A", "AAAA") and "content" in fields:
        try:
            fields["content"] = str(ipaddress.ip_address(fields["content"]))
        except ValueError:
            pass
    return fields


def _envelope(result, errors: list[tuple[int, str]] = (), info: dict | None = None) -> dict:
    body = {
        "success": not errors,
        "errors": [{"code": c, "message": m} for c, m in errors],
        "messages": [],
        "result": result,
    }
    if info is not None:
        body["result_info"] = info
    return body


def _page(items: list, query: dict) -> dict:
    """One page of a listing; past the last page the result is empty, which ends the SDK's iteration."""
    page, per_page = int(query.get("page", 1)), min(int(query.get("per_page", 20)), 5000)
    chunk = items[(page - 1) * per_page : page * per_page]
    pages = max(1, -(-len(items) // per_page))
    return _envelope(
        chunk,
        info={"page": page, "per_page": per_page, "count": len(chunk), "total_count": len(items), "total_pages": pages},
    )
