"""Resolve the secret references of a profile. Values stay inside Secret objects and never print."""

from __future__ import annotations

import json
import os
import secrets as random_source
import subprocess
import time
from pathlib import Path

import yaml

from gpuaas.errors import Problem, SecretError
from gpuaas.profile import REPO_ROOT, SECRET_REF, Profile, SecretSource

#: Where generated secrets of an environment live (git-ignored).
GENERATED_DIR = REPO_ROOT / ".secrets"
#: The operator's age identity used to decrypt age sources.
AGE_IDENTITY_ENV = "GPUAAS_AGE_IDENTITY"


class Secret:
    """A secret value. repr/str show only its name so it cannot leak into output or logs."""

    __slots__ = ("name", "_value")

    def __init__(self, name: str, value: str):
        self.name = name
        self._value = value

    def reveal(self) -> str:
        """The value itself: pass it only to what writes it where it belongs."""
        return self._value

    def __repr__(self) -> str:
        return f"<secret {self.name}>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.name == self.name and other._value == self._value

    def __hash__(self) -> int:
        return hash(self.name)


def resolve(
    profile: Profile, reference: str, repo_root: Path = REPO_ROOT, generated_dir: Path = GENERATED_DIR
) -> Secret:
    """Resolve 'secret:<name>' (or a bare name) of `profile` to its value."""
    match = SECRET_REF.match(reference)
    name = match.group(1) if match else reference
    source = profile.secrets.get(name)
    if source is None:
        raise SecretError(f"{profile.source}: secrets.{name}: not defined")
    reader = {"env": _from_env, "file": _from_file, "age": _from_age, "generate": _generated, "stored": _stored}[
        source.kind()
    ]
    try:
        value = reader(name, source, profile=profile, repo_root=repo_root, generated_dir=generated_dir)
    except SecretError as error:
        raise SecretError(f"{profile.source}: secrets.{name}: {error}") from None
    if not value:
        raise SecretError(f"{profile.source}: secrets.{name}: the {source.kind()} source gives an empty value")
    return Secret(name, value)


def describe_source(profile: Profile, name: str, generated_dir: Path = GENERATED_DIR) -> str:
    """Where secret `name` comes from, in words (never its value)."""
    source = profile.secrets[name]
    kind = source.kind()
    if kind == "env":
        return f"environment variable {source.env}"
    if kind == "file":
        return f"file {source.file}"
    if kind == "age":
        return f"key {source.key} of {source.age}"
    return f"{'generated' if kind == 'generate' else 'stored'} in {generated_dir / profile.secret_scope / name}"


def json_secret(profile: Profile, reference: str, generated_dir: Path = GENERATED_DIR) -> object:
    """A secret whose value is JSON (OpenBao's init output), parsed; SecretError naming the secret and
    its source when it is not JSON."""
    secret = resolve(profile, reference, generated_dir=generated_dir)
    try:
        return json.loads(secret.reveal())
    except ValueError:
        where = describe_source(profile, secret.name, generated_dir)
        raise SecretError(
            f"{profile.source}: secrets.{secret.name}: the value from {where} is not JSON, which its reader "
            "expects (value not shown)"
        ) from None


def _from_env(name: str, source: SecretSource, **_) -> str:
    try:
        return os.environ[source.env]
    except KeyError:
        raise SecretError(f"environment variable {source.env} is not set") from None


def _read_secret_file(path: Path) -> str:
    """The stripped text of a secret's file; SecretError naming the file (never its content) when it is
    a directory, cannot be read, or is not UTF-8 text."""
    if path.is_dir():
        raise SecretError(f"{path} is a directory; a secret's file is a regular file")
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SecretError(f"{path} is not UTF-8 text (value not shown)") from None


def _from_file(name: str, source: SecretSource, **_) -> str:
    return _read_secret_file(Path(source.file))


def _from_age(name: str, source: SecretSource, repo_root: Path, **_) -> str:
    identity = os.environ.get(AGE_IDENTITY_ENV)
    if not identity:
        raise SecretError(f"set {AGE_IDENTITY_ENV} to the age identity file that decrypts {source.age}")
    result = subprocess.run(
        ["age", "--decrypt", "--identity", identity, str(repo_root / source.age)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SecretError(f"age could not decrypt {source.age}: {result.stderr.strip()}")
    try:
        data = yaml.safe_load(result.stdout) or {}
    except yaml.YAMLError:
        # PyYAML's message quotes the offending line, which here is decrypted secret text.
        raise SecretError(f"the decrypted content of {source.age} is not a YAML mapping (value not shown)") from None
    if not isinstance(data, dict) or source.key not in data:
        raise SecretError(f"key '{source.key}' is not in {source.age}")
    return str(data[source.key])


def _generated(name: str, source: SecretSource, profile: Profile, generated_dir: Path, **_) -> str:
    path = generated_dir / profile.secret_scope / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(random_source.token_urlsafe(source.generate)[: source.generate])
    return _read_secret_file(path)


def _stored(name: str, source: SecretSource, profile: Profile, generated_dir: Path, **_) -> str:
    path = generated_dir / profile.secret_scope / name
    if not path.exists():
        raise SecretError(f"not stored yet in {path}: the deploy that creates it writes it there")
    return _read_secret_file(path)


def writable_path(profile: Profile, reference: str, generated_dir: Path = GENERATED_DIR) -> Path:
    """Where a deploy may write the secret `reference` (its `file` or `stored` source).
    Raises SecretError for the sources a deploy cannot write (env, age, generate)."""
    match = SECRET_REF.match(reference)
    name = match.group(1) if match else reference
    source = profile.secrets.get(name)
    if source is None:
        raise SecretError(f"secret '{name}' is not defined in profile '{profile.name}'")
    if source.file is not None:
        return Path(source.file)
    if source.stored:
        return generated_dir / profile.secret_scope / name
    raise SecretError(
        f"secret '{name}' has a {source.kind()} source, which a deploy cannot write: give it `stored: true` or "
        "a `file` source for the deploy to write, then move the value where the profile should read it from"
    )


def store(profile: Profile, reference: str, value: str, generated_dir: Path = GENERATED_DIR) -> Path:
    """Write a secret created by a deploy to its file (0600, directory 0700). A different value already
    there is kept beside it as NAME.replaced-<UTC time>, never overwritten. Returns the path."""
    path = writable_path(profile, reference, generated_dir)
    if path.is_dir():
        raise SecretError(f"{path} is a directory; a secret's file is a regular file (nothing was written)")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists():
        try:
            current = _read_secret_file(path)
        except SecretError:
            current = None  # unreadable as text: kept aside below like any other value
        if current == value.strip():
            return path
        path.rename(path.with_name(f"{path.name}.replaced-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"))
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(value)
    return path


def generate_missing(profile: Profile, generated_dir: Path = GENERATED_DIR) -> list[str]:
    """Create every `generate` secret of the profile that does not exist yet; returns their names."""
    created = []
    for name, source in sorted(profile.secrets.items()):
        if source.generate is not None and not (generated_dir / profile.secret_scope / name).exists():
            resolve(profile, name, generated_dir=generated_dir)
            created.append(name)
    return created


def unresolvable(profile: Profile, generated_dir: Path = GENERATED_DIR) -> list[Problem]:
    """Every secret the profile uses that cannot be read now, as a problem of its `secrets:` entry, so a
    run stops before any host is contacted. Secrets of disabled services are not needed; a secret a
    deploy writes (OpenBao's init output) may not exist before that deploy."""
    disabled = [
        f"services.{name}."
        for name in type(profile.services).model_fields
        if getattr(getattr(profile.services, name), "enabled", True) is False
    ]
    wanted = {
        SECRET_REF.match(ref).group(1)
        for path, ref in profile.secret_refs().items()
        if not path.startswith(tuple(disabled))
    }
    written, problems = profile.written_secrets(), []
    for name in sorted(wanted):
        if name in written and not writable_path(profile, name, generated_dir).exists():
            continue
        try:
            resolve(profile, name, generated_dir=generated_dir)
        except SecretError as error:
            problems.append(Problem(f"secrets.{name}", str(error).removeprefix(f"{profile.source}: secrets.{name}: ")))
    return problems


def environment_file(role: str, variables: dict[str, Secret | str]) -> Secret:
    """An environment file (systemd's EnvironmentFile, also sourced by sh) as a Secret. Values are
    single-quoted, which both read literally; a value that holds a quote or a line break cannot be
    carried that way and is refused, naming the secret (never showing it)."""
    lines = [f"# Managed by gpuaas roles/{role}."]
    for key, value in variables.items():
        text = value.reveal() if isinstance(value, Secret) else value
        if "'" in text or "\n" in text:
            what = f"secret '{value.name}'" if isinstance(value, Secret) else key
            raise SecretError(f"{what} holds a single quote or a line break, which an environment file cannot carry")
        lines.append(f"{key}='{text}'")
    names = ", ".join(value.name for value in variables.values() if isinstance(value, Secret))
    return Secret(f"{names} ({role} environment)", "\n".join(lines) + "\n")
