"""Write an environment's effective per-host configuration as reviewable files, without contacting hosts."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from gpuaas.discovery import all_roles
from gpuaas.groups import HOST_GROUPS
from gpuaas.profile import SECRET_REF, Profile, deep_merge
from gpuaas.role import Section


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True)


def host_settings(profile: Profile, name: str) -> dict[str, Any]:
    node = profile.host(name)
    return {
        "environment": profile.name,
        "host": node.model_dump(mode="json", exclude={"roles"}),
        "connection": profile.connection.model_dump(mode="json"),
        "network": profile.network.model_dump(mode="json"),
        "cluster": profile.cluster.model_dump(mode="json"),
        "roles": {
            role.name: role.settings_of(profile, node).model_dump(mode="json")
            for role in all_roles()
            if role.section is Section.ROLES and role.applies(node)
        },
    }


def host_files(profile: Profile, name: str) -> dict[str, str]:
    """Remote path -> content of every file the roles write on the host."""
    node = profile.host(name)
    files: dict[str, str] = {}
    for role in all_roles():
        if role.applies(node):
            files.update(role.files(profile, node))
    return files


def secret_index(profile: Profile) -> dict[str, Any]:
    """Every secret by name: where its value comes from and which fields use it. Never a value."""
    used_by: dict[str, list[str]] = {}
    for path, ref in profile.secret_refs().items():
        used_by.setdefault(SECRET_REF.match(ref).group(1), []).append(path)
    return {
        name: deep_merge(source.model_dump(exclude_none=True), {"used_by": sorted(used_by.get(name, []))})
        for name, source in sorted(profile.secrets.items())
    }


#: The file a render leaves in its output directory: the files it wrote, one relative path a line. The
#: next render into that directory removes only those of them it no longer writes.
STAMP = ".gpuaas-render"
_STAMP_HEADER = "# Written by `gpuaas render`: the files of the last render here (the next one removes only these).\n"


class RenderError(Exception):
    """An output directory render may not write into; nothing was changed."""


def rendered_files(profile: Profile) -> dict[str, str]:
    """Relative path -> content of every file a render of `profile` writes."""
    files = {
        "environment.yml": _dump(
            {
                "name": profile.name,
                "topology": profile.topology,
                "groups": {g: [h.name for h in profile.group(g)] for g in HOST_GROUPS},
                "artifacts": {k: v.model_dump(mode="json", exclude_none=True) for k, v in profile.artifacts.items()},
                "dns": profile.dns.model_dump(mode="json"),
                "backup": profile.backup.model_dump(mode="json"),
                "services": profile.services.model_dump(mode="json"),
                "rollout": profile.rollout.model_dump(mode="json"),
            }
        ),
        "secrets.yml": _dump(secret_index(profile)),
    }
    for node in profile.hosts:
        base = f"hosts/{node.name}"
        files[f"{base}/settings.yml"] = _dump(host_settings(profile, node.name))
        for remote, content in host_files(profile, node.name).items():
            files[f"{base}/files/{remote.lstrip('/')}"] = content
    return files


def _stamped_files(out_dir: Path) -> set[str] | None:
    """The files an earlier render recorded in out_dir's stamp; None when out_dir holds no stamp. A line
    that does not name a file inside out_dir (absolute, `..`) makes the stamp unusable: refused."""
    stamp = out_dir / STAMP
    if not stamp.exists():
        return None
    if stamp.is_symlink() or not stamp.is_file():
        raise RenderError(
            f"{out_dir}: {STAMP} is not a regular file, so it is not a render's stamp; nothing was changed"
        )
    try:
        lines = stamp.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        raise RenderError(f"{out_dir}: {STAMP} cannot be read as a render's stamp; nothing was changed") from None
    names = {line for line in lines if line and not line.startswith("#")}
    for name in names:
        parts = PurePosixPath(name).parts
        if PurePosixPath(name).is_absolute() or ".." in parts or not parts:
            raise RenderError(
                f"{out_dir}: {STAMP} lists a path outside the directory, so it is not a render's "
                "stamp; nothing was changed"
            )
    return names


def _inside(out_dir: Path, name: str) -> bool:
    """Whether out_dir/name, with every symlink on the way followed, stays inside out_dir."""
    return (out_dir / name).resolve().is_relative_to(out_dir.resolve())


def _check_output(out_dir: Path, wanted: set[str], shared: bool) -> set[str]:
    """The files of the earlier render in out_dir (empty when there is none). Raises RenderError when
    out_dir may not be written: it is a file, or a directory that holds other files and no render of
    ours (unless `shared`: the collection's own build directory, where other commands keep theirs), or
    a file render would write is there without being one of its own."""
    if out_dir.exists() and not out_dir.is_dir():
        raise RenderError(f"{out_dir} is not a directory; render writes into a directory (nothing was changed)")
    if not out_dir.exists():
        return set()
    previous = _stamped_files(out_dir)
    if previous is None and not shared and any(out_dir.iterdir()):
        raise RenderError(
            f"{out_dir} holds files that no render wrote (it has no {STAMP}); give an empty or new directory, "
            "or one an earlier render wrote (nothing was changed)"
        )
    previous = previous or set()
    for name in sorted(wanted):
        path = out_dir / name
        if not _inside(out_dir, name):
            raise RenderError(f"{out_dir}: {name} leads outside the directory through a symlink; nothing was changed")
        if (path.exists() or path.is_symlink()) and name not in previous and not shared:
            raise RenderError(f"{out_dir}: {name} is there and was not written by a render; nothing was changed")
        if path.exists() and not path.is_file():
            raise RenderError(f"{out_dir}: {name} is there and is not a file; nothing was changed")
        for parent in PurePosixPath(name).parents:
            if (out_dir / parent).exists() and not (out_dir / parent).is_dir():
                raise RenderError(f"{out_dir}: {parent} is there and is not a directory; nothing was changed")
    return previous


def _write_stamp(out_dir: Path, names: set[str]) -> None:
    """Replace out_dir's stamp in one step with the list of `names`."""
    temporary = out_dir / f"{STAMP}.tmp"
    temporary.write_text(_STAMP_HEADER + "".join(f"{name}\n" for name in sorted(names)), encoding="utf-8")
    os.replace(temporary, out_dir / STAMP)


def _remove_stale(out_dir: Path, stale: set[str]) -> None:
    """Remove the files of the earlier render that this one no longer writes, and the directories that
    leaves empty; nothing else."""
    for name in sorted(stale):
        path = out_dir / name
        if (path.is_file() or path.is_symlink()) and _inside(out_dir, str(PurePosixPath(name).parent)):
            path.unlink()
        parent = path.parent
        while parent != out_dir and parent.is_dir() and not parent.is_symlink() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent


def render(profile: Profile, out_dir: Path, shared: bool = False) -> list[Path]:
    """Write the rendered environment into out_dir: a new or empty directory, or one holding an earlier
    render (its stamp). Files of the earlier render that are no longer produced are removed; nothing
    else in out_dir is touched. `shared`: out_dir is the collection's build directory, where other
    commands keep their own files. Returns the files written, sorted. RenderError, with nothing
    changed, when out_dir may not be written."""
    files = rendered_files(profile)
    previous = _check_output(out_dir, set(files), shared)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Until the new files are all written, the stamp lists both renders' files, so an interrupted
    # render leaves a directory the next one still recognises as its own.
    _write_stamp(out_dir, previous | set(files))
    for name, content in files.items():
        path = out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    _write_stamp(out_dir, set(files))
    _remove_stale(out_dir, previous - set(files))
    return sorted(out_dir / name for name in files)
