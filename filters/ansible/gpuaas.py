"""Ansible filter plugin: the same filters the pyinfra templates use (ANSIBLE_FILTER_PLUGINS=filters/ansible)."""

from filters import FILTERS


class FilterModule:
    def filters(self):
        return dict(FILTERS)
