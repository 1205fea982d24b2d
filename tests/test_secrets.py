"""Secret references resolve from env, files, age and generation; values never show."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from gpuaas.errors import SecretError
from gpuaas.profile import REPO_ROOT, load_profile, parse_profile
from gpuaas.render import render
from gpuaas.secrets import AGE_IDENTITY_ENV, Secret, generate_missing, json_secret, resolve, store, unresolvable


def test_secret_repr_never_shows_the_value():
    secret = Secret("rke2_token", "s3cr3t-value")
    assert "s3cr3t-value" not in repr(secret) + str(secret) + f"{secret}" + repr([secret])
    assert secret.reveal() == "s3cr3t-value"


def test_env_source(monkeypatch):
    profile = load_profile("staging")
    monkeypatch.setenv("GPUAAS_STAGING_RKE2_TOKEN", "from-the-environment")
    assert resolve(profile, "secret:rke2_token").reveal() == "from-the-environment"


def test_missing_env_var_names_the_variable(monkeypatch):
    monkeypatch.delenv("GPUAAS_STAGING_RKE2_TOKEN", raising=False)
    with pytest.raises(SecretError, match="GPUAAS_STAGING_RKE2_TOKEN is not set"):
        resolve(load_profile("staging"), "secret:rke2_token")


def test_file_source(tmp_path, raw):
    key_file = tmp_path / "access-key"
    key_file.write_text("AKIAEXAMPLE\n")
    raw["secrets"]["backup_access_key_id"] = {"file": str(key_file)}
    profile = parse_profile(raw, "staging.yml")
    assert resolve(profile, "secret:backup_access_key_id").reveal() == "AKIAEXAMPLE"


def test_generated_secret_is_created_once_and_private(tmp_path):
    profile = load_profile("local")
    created = generate_missing(profile, generated_dir=tmp_path)
    # Every secret the collection makes up itself; a stored one is written by the deploy that creates it.
    assert set(created) == {name for name, source in profile.secrets.items() if source.generate}
    assert "openbao_init" not in created and not (tmp_path / "local" / "openbao_init").exists()
    path = tmp_path / "local" / "rke2_token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = resolve(profile, "secret:rke2_token", generated_dir=tmp_path)
    assert len(first.reveal()) == 48
    assert generate_missing(profile, generated_dir=tmp_path) == []
    assert resolve(profile, "secret:rke2_token", generated_dir=tmp_path) == first


def test_age_source_decrypts_with_the_operators_identity(tmp_path, raw, monkeypatch):
    identity = tmp_path / "operator.key"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient = subprocess.run(
        ["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True
    ).stdout.strip()
    encrypted = tmp_path / "staging.secrets.age"
    subprocess.run(["age", "-r", recipient, "-o", str(encrypted)], input=b"rke2_token: from-age\n", check=True)
    raw["secrets"]["rke2_token"] = {"age": encrypted.name, "key": "rke2_token"}
    profile = parse_profile(raw, "staging.yml", repo_root=tmp_path)
    monkeypatch.setenv(AGE_IDENTITY_ENV, str(identity))
    assert resolve(profile, "secret:rke2_token", repo_root=tmp_path).reveal() == "from-age"
    monkeypatch.delenv(AGE_IDENTITY_ENV)
    with pytest.raises(SecretError, match=AGE_IDENTITY_ENV):
        resolve(profile, "secret:rke2_token", repo_root=tmp_path)


def test_age_source_requires_the_file_to_exist(raw):
    raw["secrets"]["rke2_token"] = {"age": "inventories/missing.age", "key": "rke2_token"}
    with pytest.raises(Exception, match=r"secrets.rke2_token.age: no such file"):
        parse_profile(raw, "staging.yml")


def test_render_holds_references_never_values(tmp_path, monkeypatch):
    values = {
        f"GPUAAS_STAGING_{name}": f"VALUE-{name}-0123456789"
        for name in ("RKE2_TOKEN", "RKE2_AGENT_TOKEN", "CLOUDFLARE_TOKEN")
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    files = render(load_profile("staging"), tmp_path / "out")
    text = "".join(path.read_text() for path in files)
    for value in values.values():
        assert value not in text
    assert "GPUAAS_STAGING_RKE2_TOKEN" in (tmp_path / "out" / "secrets.yml").read_text()


def test_generated_local_secrets_are_ignored_by_git():
    result = subprocess.run(["git", "check-ignore", "-q", ".secrets/local/rke2_token"], cwd=REPO_ROOT, check=False)
    assert result.returncode == 0


def test_a_missing_secret_names_the_file_the_field_and_the_source(monkeypatch):
    monkeypatch.delenv("GPUAAS_STAGING_REDIS_PASSWORD", raising=False)
    with pytest.raises(SecretError) as error:
        resolve(load_profile("staging"), "secret:redis_password")
    assert str(error.value) == (
        "inventories/staging.yml: secrets.redis_password: environment variable GPUAAS_STAGING_REDIS_PASSWORD is not set"
    )


def test_a_stored_secret_that_is_not_json_names_the_secret_and_its_source(tmp_path):
    profile = load_profile("local")
    stored = tmp_path / profile.secret_scope / "openbao_init"
    stored.parent.mkdir(parents=True)
    stored.write_text("unseal-key-that-is-not-json\n")
    with pytest.raises(SecretError) as error:
        json_secret(profile, "secret:openbao_init", generated_dir=tmp_path)
    message = str(error.value)
    assert message.startswith("inventories/local.yml: secrets.openbao_init: the value from stored in ")
    assert str(stored) in message and "is not JSON" in message
    assert "unseal-key-that-is-not-json" not in message


def test_validate_secrets_lists_every_secret_it_cannot_read_and_spares_what_a_deploy_writes(monkeypatch):
    for name in [key for key in os.environ if key.startswith("GPUAAS_STAGING_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GPUAAS_STAGING_RKE2_TOKEN", "set")
    problems = {problem.path: problem.reason for problem in unresolvable(load_profile("staging"))}
    assert problems["secrets.rke2_agent_token"] == "environment variable GPUAAS_STAGING_RKE2_AGENT_TOKEN is not set"
    assert problems["secrets.backup_access_key_id"].startswith("cannot read /etc/gpuaas/staging/backup-access-key-id")
    assert "secrets.rke2_token" not in problems
    # OpenBao's init output is written by the deploy; Keycloak is off in staging, so its admin is not needed.
    assert "secrets.openbao_init" not in problems and "secrets.keycloak_admin_password" not in problems
    result = subprocess.run(
        ["gpuaas", "validate", "staging", "--secrets"],
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("GPUAAS_")},
    )
    assert result.returncode == 2
    assert "inventories/staging.yml: secrets.nats_password: environment variable" in result.stderr


def _file_sourced(raw, tmp_path):
    """staging with its backup access key read from a file under tmp_path; returns (profile, that path)."""
    path = tmp_path / "access-key"
    path.write_text("placeholder\n")
    raw["secrets"]["backup_access_key_id"] = {"file": str(path)}
    return parse_profile(raw, "staging.yml"), path


def test_a_file_source_that_became_a_directory_is_named_not_read(tmp_path, raw):
    profile, path = _file_sourced(raw, tmp_path)
    path.unlink()
    path.mkdir()
    with pytest.raises(SecretError, match=r"secrets.backup_access_key_id: .*access-key is a directory"):
        resolve(profile, "secret:backup_access_key_id")
    with pytest.raises(SecretError, match="is a directory"):
        store(profile, "secret:backup_access_key_id", "new-value")
    assert path.is_dir() and list(path.iterdir()) == []


def test_a_secret_file_that_is_not_utf8_never_shows_its_bytes(tmp_path, raw):
    profile, path = _file_sourced(raw, tmp_path)
    path.write_bytes(b"AKIA-secret-bytes-zz\xff\xfe\n")
    with pytest.raises(SecretError) as error:
        resolve(profile, "secret:backup_access_key_id")
    message = str(error.value)
    assert "is not UTF-8 text (value not shown)" in message
    assert "secret-bytes-zz" not in message and "xff" not in message


def test_an_age_file_whose_content_is_not_yaml_never_shows_the_content(tmp_path, raw, monkeypatch):
    identity = tmp_path / "operator.key"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient = subprocess.run(
        ["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True
    ).stdout.strip()
    encrypted = tmp_path / "staging.secrets.age"
    subprocess.run(
        ["age", "-r", recipient, "-o", str(encrypted)], input=b"rke2_token: [decrypted-secret-zz\n", check=True
    )
    raw["secrets"]["rke2_token"] = {"age": encrypted.name, "key": "rke2_token"}
    profile = parse_profile(raw, "staging.yml", repo_root=tmp_path)
    monkeypatch.setenv(AGE_IDENTITY_ENV, str(identity))
    with pytest.raises(SecretError) as error:
        resolve(profile, "secret:rke2_token", repo_root=tmp_path)
    assert "is not a YAML mapping (value not shown)" in str(error.value)
    assert "decrypted-secret-zz" not in str(error.value)


def test_store_keeps_an_unreadable_old_value_aside(tmp_path, raw):
    profile, path = _file_sourced(raw, tmp_path)
    path.write_bytes(b"\xff\xfeold")
    store(profile, "secret:backup_access_key_id", "new-value")
    assert path.read_text() == "new-value"
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("access-key.replaced-")]
    assert len(kept) == 1 and kept[0].read_bytes() == b"\xff\xfeold"
