"""Generate each role README's variable table from its settings model, so the two cannot drift."""

from __future__ import annotations

import json
import types
from functools import reduce
from operator import or_
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from gpuaas.discovery import all_roles
from gpuaas.profile import REPO_ROOT, Backup


def readme_settings() -> dict[str, type[BaseModel]]:
    """Each role's README and the settings model its variable table comes from (roles/backup's
    variables are the profile's `backup:` section)."""
    return {role.name: role.settings for role in all_roles() if role.settings} | {"backup": Backup}


BEGIN, END = "<!-- BEGIN variables (gpuaas docs) -->", "<!-- END variables (gpuaas docs) -->"


def _plain(annotation: Any) -> Any:
    """`annotation` without its Annotated validators (their reprs name functions and addresses)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _plain(args[0])
    if origin in (Union, types.UnionType):
        return reduce(or_, (_plain(a) for a in args))
    if origin in (list, dict, tuple, set, frozenset):
        return origin[tuple(_plain(a) for a in args)]
    return annotation


def _rows(model: type[BaseModel], prefix: str):
    for name, field in model.model_fields.items():
        annotation = field.annotation
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield path, "", "", field.description or ""
            yield from _rows(annotation, path)
            continue
        type_name = getattr(annotation, "__name__", None) or str(_plain(annotation)).replace("typing.", "")
        if field.is_required():
            yield path, type_name, "", f"Required. {field.description or ''}".strip()
            continue
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            default = default.model_dump(mode="json")
        elif isinstance(default, list):
            default = [d.model_dump(mode="json") if isinstance(d, BaseModel) else d for d in default]
        yield path, type_name, json.dumps(default), field.description or ""


def variables_table(model: type[BaseModel]) -> str:
    lines = ["| variable | type | default | what it does |", "|---|---|---|---|"]
    for path, type_name, default, description in _rows(model, ""):
        cell = f"`{default}`" if default else ""
        lines.append(f"| `{path}` | {type_name.replace('|', 'or')} | {cell.replace('|', '/')} | {description} |")
    return "\n".join(lines)


def readme_with_table(readme: str, model: type[BaseModel]) -> str:
    head, _, rest = readme.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{variables_table(model)}\n{END}{tail}"


def update_readmes(root: Path = REPO_ROOT) -> list[Path]:
    """Rewrite the variable table of every role README; returns those that changed."""
    changed = []
    for role, model in readme_settings().items():
        path = root / "roles" / role / "README.md"
        current = path.read_text(encoding="utf-8")
        updated = readme_with_table(current, model)
        if updated != current:
            path.write_text(updated, encoding="utf-8")
            changed.append(path)
    return changed
