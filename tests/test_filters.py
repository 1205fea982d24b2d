"""The filters behave the same in pyinfra's templating, our renderer and Ansible."""

from __future__ import annotations

import importlib.util

from jinja2 import Environment

from filters import FILTERS, hosts_lines, quote_words, sysctl_lines, yes_no
from filters.jinja import CollectionFilters
from gpuaas.profile import REPO_ROOT
from gpuaas.templating import render_template


def test_sysctl_lines_sorted_by_key():
    assert sysctl_lines({"b.x": 1, "a.y": "2"}) == "a.y = 2\nb.x = 1"


def test_hosts_lines_align_addresses():
    entries = [{"address": "10.0.0.1", "names": ["a", "a.example"]}, {"address": "10.0.0.10", "names": ["b"]}]
    assert hosts_lines(entries) == "10.0.0.1  a a.example\n10.0.0.10 b"


def test_yes_no_and_quote_words():
    assert (yes_no(True), yes_no(0)) == ("yes", "no")
    assert quote_words(['a "b"', "c"]) == '"a \\"b\\"" "c"'


def test_extension_registers_every_filter():
    environment = Environment(extensions=[CollectionFilters])
    assert set(FILTERS) <= set(environment.filters)
    assert environment.from_string("{{ {'k.v': 1} | sysctl_lines }}").render() == "k.v = 1"


def test_pyinfra_templating_uses_the_filters(tmp_path):
    template = tmp_path / "t.j2"
    template.write_text("{{ flag | yes_no }}\n")
    assert render_template(str(template), {"flag": True}) == "yes\n"


def test_ansible_filter_plugin_exposes_the_same_functions():
    path = REPO_ROOT / "filters" / "ansible" / "gpuaas.py"
    spec = importlib.util.spec_from_file_location("gpuaas_filter_plugin", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.FilterModule().filters() == FILTERS
