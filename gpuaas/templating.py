"""Render role templates with pyinfra's own Jinja2 setup, so `render` and the deploy write the same bytes."""

from __future__ import annotations

from typing import Any

from pyinfra.api.util import get_template

from filters.jinja import jinja_env_kwargs


def render_template(template: str, context: dict[str, Any]) -> str:
    return get_template(template, jinja_env_kwargs()).render(context)
