"""pyinfra's command line, run as given (with --dry), that also writes to the JSON file
GPUAAS_PLANNED_COMMANDS names every command the planned operations would run, by host (shell commands
as the shell gets them, uploads as their destination and, for text made on the controller, their
content), and every fact command that did run (a role's probes among them). The operations are
generated the way a real run generates them, reading facts, but none is executed.

    GPUAAS_PLANNED_COMMANDS=plan.json python tests/hosttools/planned_commands.py --dry INVENTORY DEPLOY
"""

from __future__ import annotations

import json
import os
from io import StringIO

import pyinfra.api.facts as pyinfra_facts
import pyinfra_cli.cli as cli
from pyinfra.api.command import FileUploadCommand, StringCommand
from pyinfra.context import ctx_host, ctx_state
from pyinfra_cli.main import main


def _describe(command) -> str | None:
    if isinstance(command, StringCommand):
        return command.get_raw_value()
    if isinstance(command, FileUploadCommand):
        content = command.src.getvalue() if isinstance(command.src, StringIO) else ""
        return f"upload {command.dest}\n{content}"
    return None


def planned(state) -> dict[str, list[str]]:
    """Host name -> the commands of its operations, in the order they would run."""
    commands: dict[str, list[str]] = {}
    for host in state.inventory.iter_activated_hosts():
        found = commands.setdefault(host.name, [])
        for op_hash in state.get_op_order():
            if op_hash not in state.ops[host]:
                continue
            with ctx_host.use(host):
                generated = state.get_op_data_for_host(host, op_hash).command_generator()
                found += [text for text in map(_describe, generated) if text is not None]
    return commands


#: Every fact command built (and so run on a host), in order.
FACT_COMMANDS: list[str] = []


def _recording(make_command):
    def make_and_record(command_attribute, host_args):
        command = make_command(command_attribute, host_args)
        if command:
            FACT_COMMANDS.append(_describe(command) if isinstance(command, StringCommand) else str(command))
        return command

    return make_and_record


def _write_plan_then(exit_):
    def write_and_exit() -> None:
        if ctx_state.isset():
            plan = {"operations": planned(ctx_state.get()), "facts": FACT_COMMANDS}
            with open(os.environ["GPUAAS_PLANNED_COMMANDS"], "w", encoding="utf-8") as handle:
                json.dump(plan, handle, indent=1)
        exit_()

    return write_and_exit


if __name__ == "__main__":
    pyinfra_facts._make_command = _recording(pyinfra_facts._make_command)
    cli._exit = _write_plan_then(cli._exit)
    main()
