"""Every role declares itself, the core finds them by looking, and imports none of them by name."""

from __future__ import annotations

import ast
from dataclasses import fields

import pytest

from gpuaas.discovery import all_roles, role_named, roles_in
from gpuaas.profile import REPO_ROOT, ROLE_SETTINGS, Services, load_profile
from gpuaas.role import Phase, Role, Section

#: The fields that name a part of the role as `module:attribute`.
REFERENCES = [field.name for field in fields(Role) if field.type == "str | None" and field.name != "package"]


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
