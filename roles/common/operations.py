"""Operations roles/common needs that pyinfra does not ship in this form."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import Block

from roles.common.facts import FSTAB_SWAP_ERE, ActiveSwap, DpkgPending, FstabSwapEntries, KernelModuleState


@operation()
def kernel_module(module: str, kconfig: str | None = None):
    """
    Load a kernel module unless it is loaded or built into the running kernel.

    + module: module name as modprobe knows it
    + kconfig: kernel config symbol that builds the module in (checked before modprobe)

    **Example:**

    .. code:: python

        kernel_module(module="br_netfilter", kconfig="CONFIG_BRIDGE_NETFILTER")
    """
    if host.get_fact(KernelModuleState, module=module, kconfig=kconfig) == "absent":
        yield f"modprobe {shlex.quote(module)}"
    else:
        host.noop(f"kernel module {module} is available")


@operation()
def swap_disabled():
    """
    Turn every swap device off now and comment out the swap lines of /etc/fstab.

    **Example:**

    .. code:: python

        swap_disabled()
    """
    changed = False
    if host.get_fact(ActiveSwap):
        yield "swapoff -a"
        changed = True
    if host.get_fact(FstabSwapEntries):
        yield f"sed -i -E 's/({FSTAB_SWAP_ERE}.*)$/# \\1/' /etc/fstab"
        changed = True
    if not changed:
        host.noop("swap is off")


@operation()
def file_block(path: str, lines: list[str], marker: str):
    """
    Keep a marked block of lines in a file, rewriting the file in place (same inode), so that
    bind-mounted files such as a container's /etc/hosts can be managed too.

    + path: the file to edit
    + lines: the lines wanted between the markers
    + marker: marker line with ``{mark}`` for BEGIN/END

    **Example:**

    .. code:: python

        file_block(path="/etc/hosts", lines=["10.0.0.1 node-1"], marker="# {mark} cluster hosts")
    """
    begin, end = marker.format(mark="BEGIN"), marker.format(mark="END")
    if host.get_fact(Block, path=path, marker=marker) == lines:
        host.noop(f"{path} block is up to date")
        return
    block = "\n".join([begin, *lines, end]) + "\n"
    awk = f"awk -v b={shlex.quote(begin)} -v e={shlex.quote(end)} '$0==b{{skip=1}} !skip{{print}} $0==e{{skip=0}}'"
    q_path = shlex.quote(path)
    yield (
        f'TMP="$(mktemp)" && {{ {awk} {q_path} 2>/dev/null; printf %s {shlex.quote(block)}; }} > "$TMP" '
        f'&& cat "$TMP" > {q_path} && rm -f "$TMP"'
    )


@operation()
def dpkg_settled():
    """
    Finish what an interrupted dpkg left half-done (`dpkg --configure -a`), which apt otherwise
    refuses to work past.

    **Example:**

    .. code:: python

        dpkg_settled()
    """
    if host.get_fact(DpkgPending):
        yield "DEBIAN_FRONTEND=noninteractive dpkg --configure -a"
    else:
        host.noop("dpkg has nothing left to finish")
