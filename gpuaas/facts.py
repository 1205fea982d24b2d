"""Facts more than one role reads."""

from __future__ import annotations

import re
import shlex

from pyinfra.api import FactBase


class CertificateNames(FactBase):
    """The subject alternative names of a PEM certificate and whether it is still valid `days` from now:
    {"names": [...], "valid": bool}; None when there is no readable certificate."""

    def command(self, path: str, days: int) -> str:
        return (
            f"test -r {path} || exit 0; openssl x509 -in {path} -noout -ext subjectAltName 2>/dev/null; "
            f"openssl x509 -in {path} -noout -checkend {days * 86400} >/dev/null 2>&1 && echo VALID || echo EXPIRING"
        )

    def process(self, output: list[str]) -> dict | None:
        if not output:
            return None
        names = [
            name.strip()
            for line in output[:-1]
            if not line.startswith("X509v3")
            for name in line.split(",")
            if name.strip()
        ]
        return {"names": sorted(re.sub(r"\s+", " ", name) for name in names), "valid": output[-1] == "VALID"}


#: A file's identity, as the program records compare it: size, change time and inode. Any write,
#: replacement or chmod of the file changes it.
FILE_IDENTITY = "stat -c '%s %Z %i'"


def program_record_path(path: str) -> str:
    """Where the record of the program at `path` is kept: beside it, hidden."""
    directory, name = path.rsplit("/", 1)
    return f"{directory}/.{name}.sha256"


class ProgramRecord(FactBase):
    """The record kept beside a program and the program file's identity now:
    {"record": "SHA256 SIZE CTIME INODE" or None, "identity": "SIZE CTIME INODE" or None}."""

    def command(self, path: str) -> str:
        record, program = shlex.quote(program_record_path(path)), shlex.quote(path)
        return (
            f"printf 'record %s\\n' \"$(cat {record} 2>/dev/null)\"; "
            f"printf 'identity %s\\n' \"$({FILE_IDENTITY} {program} 2>/dev/null)\""
        )

    def process(self, output: list[str]) -> dict:
        values = dict(line.split(" ", 1) if " " in line else (line, "") for line in output)
        return {key: values.get(key) or None for key in ("record", "identity")}
