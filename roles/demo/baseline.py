"""The demo's baseline as the repository keeps it: `baseline.yml` in the directory `roles.demo.baseline`
names, with the files it points to. Data with fixed identifiers, not a dump: the loader (gpuaas's
`GPUAAS_RESET=load`) writes exactly this into the services, whatever they held before."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gpuaas.errors import Problem, ProfileError, field_path
from gpuaas.fieldtypes import SecretRef
from gpuaas.profile import REPO_ROOT, Profile, read_yaml
from gpuaas.safetext import safe_text
from roles.demo.settings import RELATIVE_PATH, DemoSettings
from roles.postgres.settings import Identifier

Name = Annotated[str, safe_text(r"[a-z][a-z0-9-]{0,40}", "a name of a-z, 0-9 and '-', starting with a letter")]
StreamName = Annotated[str, safe_text(r"[A-Za-z0-9_-]{1,64}", "a stream name of letters, digits, '_' and '-'")]
Subject = Annotated[
    str, safe_text(r"[A-Za-z0-9_-]+(\.([A-Za-z0-9_-]+|\*))*(\.>)?", "a NATS subject of dot-separated tokens")
]
KeyName = Annotated[str, safe_text(r"[A-Za-z0-9:_.-]{1,200}", "a key of letters, digits, ':', '_', '.' and '-'")]
VaultPath = Annotated[
    str, safe_text(r"[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*", "a path of '/'-separated a-z, 0-9, '_' and '-'")
]
Email = Annotated[
    str, safe_text(r"[a-z0-9.+-]{1,64}@[a-z0-9.-]{1,190}", "an e-mail address of a-z, 0-9, '.', '+' and '-' around '@'")
]
FileName = Annotated[
    str,
    safe_text(RELATIVE_PATH, "a file of the baseline's directory, relative to it"),
]

PERSONAS = ("user", "tenant_admin", "platform_admin", "ops")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Persona(Strict):
    """A named demo account: in the realm (when Keycloak is deployed) and in the product's data."""

    username: Name
    persona: Literal[PERSONAS]
    name: str = Field(max_length=80)
    email: Email
    tenant: Name | None = None
    #: `totp`: a one-time-password credential from `mfa_seed`; `pending`: set up at the next sign-in.
    mfa: Literal["none", "totp", "pending"] = "none"


class Database(Strict):
    """A database of roles/postgres (its owner loads it) and the SQL files that make its content."""

    database: Identifier
    files: list[FileName] = Field(min_length=1)


class RedisKey(Strict):
    key: KeyName
    type: Literal["string", "hash", "set", "list", "zset"]
    #: string: text; hash: {field: text}; set and list: [text]; zset: {member: score}.
    value: str | list[str] | dict[str, str] | dict[str, float]

    @model_validator(mode="after")
    def _shape(self) -> RedisKey:
        wanted = {"string": str, "hash": dict, "set": list, "list": list, "zset": dict}[self.type]
        if not isinstance(self.value, wanted):
            raise ValueError(f"a {self.type} key's value is a {wanted.__name__}")
        return self


class Message(Strict):
    subject: Subject
    data: str


class Stream(Strict):
    name: StreamName
    subjects: list[Subject] = Field(min_length=1)
    messages: list[Message] = []


class Nats(Strict):
    streams: list[Stream] = []


class Vault(Strict):
    """KV version 2 paths the demo reads, under one mount the baseline owns (the reset writes nowhere else)."""

    mount: Name = "demo"
    paths: dict[VaultPath, dict[str, str]] = {}


class Baseline(Strict):
    """The demo's known-good state."""

    description: str = ""
    personas: list[Persona] = Field(min_length=1)
    #: The password of every persona (the walkthrough's sign-in), and the seed of the TOTP persona's codes.
    persona_password: SecretRef
    mfa_seed: SecretRef
    postgres: list[Database] = []
    redis: list[RedisKey] = []
    nats: Nats = Nats()
    openbao: Vault = Vault()

    @model_validator(mode="after")
    def _unique(self) -> Baseline:
        for what, names in (
            ("personas", [p.username for p in self.personas]),
            ("postgres", [d.database for d in self.postgres]),
            ("redis", [k.key for k in self.redis]),
            ("nats.streams", [s.name for s in self.nats.streams]),
        ):
            doubled = sorted({name for name in names if names.count(name) > 1})
            if doubled:
                raise ValueError(f"{what}: {', '.join(doubled)} named more than once")
        if not any(p.mfa == "totp" for p in self.personas):
            raise ValueError("personas: one persona has `mfa: totp`, for the demo's sign-in with a code")
        return self


class LoadedBaseline:
    """A validated baseline with its directory: the SQL files read through `sql(database)`."""

    def __init__(self, model: Baseline, directory: Path, source: str):
        self.model, self.directory, self.source = model, directory, source

    def sql(self, database: Database) -> str:
        return "\n".join((self.directory / name).read_text() for name in database.files)

    def digest(self) -> str:
        """The sha256 of everything the baseline is made of: the capture's record of what it started from."""
        parts = [self.model.model_dump_json()] + [self.sql(database) for database in self.model.postgres]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def settings_for(profile: Profile) -> DemoSettings:
    return DemoSettings.model_validate(profile.roles.get("demo", {}))


def load_baseline(profile: Profile, repo_root: Path = REPO_ROOT) -> LoadedBaseline:
    """The profile's baseline, validated; ProfileError naming the file and field otherwise (never a value)."""
    settings = settings_for(profile)
    if settings.baseline is None:
        raise ProfileError(profile.source, [Problem("roles.demo.baseline", "not set: the demo has no baseline")])
    directory = repo_root / settings.baseline
    path = directory / "baseline.yml"
    source = str(path.relative_to(repo_root))
    if not path.is_file():
        raise ProfileError(profile.source, [Problem("roles.demo.baseline", f"{source} does not exist")])
    data: Any = read_yaml(path, source)
    try:
        model = Baseline.model_validate(data if data is not None else {})
    except ValidationError as error:
        raise ProfileError(
            source, [Problem(field_path(e["loc"]), e["msg"].removeprefix("Value error, ")) for e in error.errors()]
        ) from None
    problems = [
        Problem(f"postgres[{i}].files[{j}]", f"{name} does not exist in {settings.baseline}")
        for i, database in enumerate(model.postgres)
        for j, name in enumerate(database.files)
        if not (directory / name).is_file()
    ]
    databases = {database.name for database in profile.services.postgres.databases}
    problems += [
        Problem(f"postgres[{i}].database", f"{database.database} is not a database of services.postgres.databases")
        for i, database in enumerate(model.postgres)
        if database.database not in databases
    ]
    for reference, field in ((model.persona_password, "persona_password"), (model.mfa_seed, "mfa_seed")):
        if reference.removeprefix("secret:") not in profile.secrets:
            problems.append(Problem(field, f"names a secret that {profile.source} does not define under secrets"))
    if problems:
        raise ProfileError(source, problems)
    return LoadedBaseline(model, directory, source)
