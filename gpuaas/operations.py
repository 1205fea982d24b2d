"""Operations shared by roles."""

from __future__ import annotations

import hashlib
import shlex
from io import StringIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, operation
from pyinfra.facts.files import File, Sha256File

from gpuaas.secrets import Secret


@operation()
def secret_file(path: str, secret: Secret, mode: str = "600", user: str = "root", group: str = "root"):
    """
    Keep a secret in a file on the host. The value travels only as a file upload: never in a
    command line, never in pyinfra's output or --diff (only the secret's name is shown).

    + path: remote file
    + secret: a resolved gpuaas.secrets.Secret
    + mode: file mode, 600 unless the service needs otherwise
    + user: file owner
    + group: file group

    **Example:**

    .. code:: python

        secret_file(path="/etc/rancher/rke2/token", secret=resolve(profile, "secret:rke2_token"))
    """
    q_path = shlex.quote(path)
    value = secret.reveal()
    info = host.get_fact(File, path=path)
    if info is None:
        # Created empty with its final mode first, so the value is never readable by others.
        yield f"install -m {mode} -o {shlex.quote(user)} -g {shlex.quote(group)} /dev/null {q_path}"
    current_sha256 = host.get_fact(Sha256File, path=path) if info else None
    upload = current_sha256 != hashlib.sha256(value.encode("utf-8")).hexdigest()
    if upload:
        yield FileUploadCommand(StringIO(value), path)
    if upload or str(info["mode"]) != mode.lstrip("0") or (info["user"], info["group"]) != (user, group):
        yield f"chmod {mode} {q_path} && chown {shlex.quote(user)}:{shlex.quote(group)} {q_path}"
    else:
        host.noop(f"{path} holds {secret!r}")
