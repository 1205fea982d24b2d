"""Every role declares itself, the core finds them by looking, and imports none of them by name."""

from __future__ import annotations

import ast
from dataclasses import fields

import pytest

from gpuaas.discovery import all_roles, role_named, roles_in
from gpuaas.evidence.packet import Layer
from gpuaas.profile import REPO_ROOT, ROLE_SETTINGS, Services, load_profile
from gpuaas.role import Phase, Role, Section

#: The fields that name a part of the role as `module:attribute` (`layer` names a section of the packet).
REFERENCES = [field.name for field in fields(Role) if field.type == "str | None" and field.name not in ("layer",)]


def test_every_role_folder_declares_its_role():
    folders = {path.parent.name for path in (REPO_ROOT / "roles").glob("*/__init__.py")}
    assert {role.name for role in all_roles()} == folders


@pytest.mark.parametrize("role", all_roles(), ids=lambda role: role.name)
def test_every_part_a_role_names_exists(role):
    for reference in REFERENCES:
        value = getattr(role, reference)
        if value is not None:
            assert role.part(value) is not None, f"roles/{role.name}: {reference}={value!r} names nothing"


@pytest.mark.parametrize("role", all_roles(), ids=lambda role: role.name)
def test_a_role_that_reads_back_names_the_packet_layer_its_items_go_in(role):
    if role.readback or role.evidence:
        assert role.layer in {layer.value for layer in Layer}, f"roles/{role.name}: layer={role.layer!r}"


@pytest.mark.parametrize("role", all_roles(), ids=lambda role: role.name)
def test_a_role_package_imports_nothing_that_reads_the_profile(role):
    """The profile reads every role's settings while it is built: a role's __init__ stays light."""
    tree = ast.parse((REPO_ROOT / "roles" / role.name / "__init__.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    allowed = {"gpuaas.groups", "gpuaas.role", f"roles.{role.name}.settings", "__future__"}
    assert imported <= allowed, f"roles/{role.name}/__init__.py imports {sorted(imported - allowed)}"


def test_the_core_imports_no_role():
    offenders = []
    for path in (REPO_ROOT / "gpuaas").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            offenders += [f"{path.relative_to(REPO_ROOT)}: {name}" for name in names if name.split(".")[0] == "roles"]
    assert offenders == []


def test_the_profile_schema_is_built_from_the_declared_settings():
    services = {role.name: role.settings for role in all_roles() if role.section is Section.SERVICES}
    assert {name: field.annotation for name, field in Services.model_fields.items()} == services
    assert ROLE_SETTINGS == {role.name: role.settings for role in all_roles() if role.section is Section.ROLES}


def test_roles_converge_in_phase_then_declared_order():
    names = [role.name for role in roles_in(Phase.DATA)]
    # The database others keep their state in comes first; the services that use it after.
    assert names[0] == "postgres"
    assert names.index("keycloak") > 0 and names.index("temporal") > 0
    assert [role.phase for role in all_roles()] == sorted((role.phase for role in all_roles()), key=list(Phase).index)


def test_a_role_off_in_the_profile_says_which_field_turns_it_off():
    profile = load_profile("local")
    keycloak = role_named("keycloak")
    assert not profile.services.keycloak.enabled
    assert keycloak.not_deployed_because(profile).startswith("services.keycloak.enabled is false in ")
    assert role_named("redis").not_deployed_because(profile) is None


ADDED_ROLE = {
    "__init__.py": '''"""roles/motd: a login message on the data hosts."""

from gpuaas.groups import DATA
from gpuaas.role import Phase, Role, Section
from roles.motd.settings import MotdSettings

ROLE = Role(
    __name__,
    title="Login message",
    applies_to=(DATA,),
    phase=Phase.DATA,
    order=90,
    settings=MotdSettings,
    section=Section.SERVICES,
    rendered_files="config:rendered_files",
)
''',
    "settings.py": """from pydantic import BaseModel, ConfigDict


class MotdSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = "managed by gpuaas"
""",
    "config.py": """def rendered_files(profile, node):
    return {"/etc/motd.d/gpuaas": profile.services.motd.message + "\\n"}
""",
}

ADDED_ROLE_CHECK = """
import roles, sys
roles.__path__.append(sys.argv[1])
from gpuaas.discovery import role_named
from gpuaas.docs import readme_settings
from gpuaas.errors import ProfileError
from gpuaas.profile import load_profile, parse_profile
from gpuaas.render import host_files
import yaml
profile = load_profile("local")
print("services:", profile.services.motd.message)
print("render:", host_files(profile, "local-server")["/etc/motd.d/gpuaas"].strip())
print("docs:", "motd" in readme_settings())
print("order:", role_named("motd").phase.value)
raw = yaml.safe_load(open("inventories/local.yml"))
raw.setdefault("services", {})["motd"] = {"colour": "red"}
try:
    parse_profile(raw, "inventories/local.yml", "local")
except ProfileError as error:
    print("refused:", [str(problem) for problem in error.problems])
"""


def test_a_role_is_added_by_its_folder_alone(tmp_path):
    """A role in a folder of its own (here outside the repository, so nothing else changes) gets its
    profile section, its rendered files and its README table without any other file naming it."""
    import subprocess
    import sys

    folder = tmp_path / "motd"
    folder.mkdir()
    for name, text in ADDED_ROLE.items():
        (folder / name).write_text(text)
    result = subprocess.run(
        [sys.executable, "-c", ADDED_ROLE_CHECK, str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "services: managed by gpuaas" in result.stdout
    assert "render: managed by gpuaas" in result.stdout
    assert "docs: True" in result.stdout and "order: data" in result.stdout
    assert "services.motd.colour: unknown key" in result.stdout
