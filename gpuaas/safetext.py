"""Text fields that reach a host: limited to characters that are inert on a shell's command line, in a
path, and in a unit or configuration file line, so that no profile value can add a command, a
directive or a path of its own.

Each type checks the whole value with Python's `re.fullmatch` (a trailing newline is refused, unlike
`^...$` with `re.match`) and says the rule in words; a refused value is never repeated in the message.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator


def safe_text(pattern: str, rule: str) -> AfterValidator:
    """A validator that accepts a string only when all of it matches `pattern`; `rule` says in words what
    it must be (the message names the rule, never the refused value)."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"must be {rule}")
        return value

    return AfterValidator(check)


_NAME = r"[A-Za-z0-9._+-]+"
#: A file name of _NAME's characters, but not `.` or `..`.
SAFE_FILE_NAME = re.compile(rf"(?!\.\.?\Z){_NAME}")

#: A version, used as a directory name on the host (/opt/gpuaas/ARTIFACT/VERSION).
Version = Annotated[
    str,
    safe_text(
        r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}",
        "a version of 1 to 64 letters, digits, '.', '_', '+' and '-', starting with a letter or digit",
    ),
]

#: A file name (no directory part), used as the last part of a path on the host.
FileName = Annotated[
    str,
    safe_text(
        SAFE_FILE_NAME.pattern,
        "a file name of letters, digits, '.', '_', '+' and '-' (not '.' or '..')",
    ),
]

#: An absolute path on a host, below `/`.
AbsolutePath = Annotated[
    str,
    safe_text(
        rf"(/(?!\.\.?(/|\Z)){_NAME})+",
        "an absolute path of '/'-separated names of letters, digits, '.', '_', '+' and '-' "
        "(no '.' or '..' part, not '/' itself)",
    ),
]

#: The name of one of the profile's `artifacts`.
ArtifactName = Annotated[
    str, safe_text(r"[a-z0-9][a-z0-9_-]*", "an artifact name of a-z, 0-9, '_' and '-', starting with a letter or digit")
]

#: A Debian package, optionally pinned (NAME=VERSION).
PackageName = Annotated[
    str,
    safe_text(
        r"[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?",
        "a Debian package name (a-z, 0-9, '+', '-' and '.', starting with a letter or digit), "
        "optionally followed by =VERSION",
    ),
]

#: A host name, DNS name or IP address another host is reached at.
HostAddress = Annotated[
    str,
    safe_text(
        r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?",
        "a host name, DNS name or IP address (letters, digits, '.', '-' and ':')",
    ),
]

#: One label of a DNS name (a name under the profile's zone).
DnsLabel = Annotated[
    str,
    safe_text(r"(?!-)[a-z0-9-]{1,63}(?<!-)", "a DNS label (1 to 63 of a-z, 0-9 and '-', no leading or trailing '-')"),
]
