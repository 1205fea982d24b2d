"""The Jinja2 extension that puts the collection's filters into an environment (pyinfra's or our own)."""

from __future__ import annotations

from jinja2 import Environment
from jinja2.ext import Extension

from filters import FILTERS


class CollectionFilters(Extension):
    """Registers every filter of filters.FILTERS; pass it in `extensions=[...]`."""

    def __init__(self, environment: Environment):
        super().__init__(environment)
        environment.filters.update(FILTERS)


#: What pyinfra's files.template takes as jinja_env_kwargs (a fresh dict each time: pyinfra pops from it).
def jinja_env_kwargs() -> dict:
    return {"extensions": [CollectionFilters]}
