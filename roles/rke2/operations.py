"""Operations of roles/rke2: a joining node's secure token, and a manifest the role no longer places."""

from __future__ import annotations

import posixpath
import shlex

from pyinfra import host, state
from pyinfra.api import StringCommand, operation
from pyinfra.facts.files import File, Sha256File

from gpuaas.operations import secret_file
from gpuaas.secrets import Secret
from roles.rke2.checks import kubectl
from roles.rke2.config import SERVER_CA, secure_token


@operation()
def join_token_file(path: str, ca_host: str, user: str, secret: Secret):
    """
    Keep in `path` (root only) RKE2's secure token `K10<sha256 of the cluster CA>::USER:SECRET`, so the
    node verifies the server it joins before it sends the secret. The CA's hash is read from the server
    `ca_host` (its server-ca.crt, over the operator's own connection to it) when the operation runs,
    after that server started; the token travels like every secret (gpuaas.operations.secret_file).
    Fails the host, naming the server, when that server has no CA yet.

    + path: the node's token file (its config.yaml `token-file`)
    + ca_host: pyinfra's name of the server the cluster started on
    + user: `server` (a joining server) or `node` (an agent)
    + secret: the cluster token (servers) or the agent token (agents)
    """
    server = state.inventory.get_host(ca_host)
    ca_sha256 = server.get_fact(Sha256File, path=SERVER_CA)
    if not ca_sha256:
        failure = (
            f"{SERVER_CA} is not on {ca_host}: the server the nodes join has not started "
            "(journalctl -u rke2-server there)"
        )
        yield StringCommand(f"echo {shlex.quote(failure)} >&2; exit 1")
        return
    yield from secret_file._inner(path=path, secret=secure_token(ca_sha256, user, secret))


@operation()
def manifest_withdrawn(path: str):
    """
    Take back a manifest the role placed: delete what it created from the cluster and the AddOn that
    tracks it (RKE2 leaves both when the file goes), then remove the file. The file stays when the
    cluster cannot be asked, so the next run tries again.

    + path: the manifest in the servers' manifests directory
    """
    if host.get_fact(File, path=path) is None:
        host.noop(f"{path} is not there")
        return
    addon = posixpath.splitext(posixpath.basename(path))[0]
    quoted = shlex.quote(path)
    yield (
        f"{kubectl(f'delete -f {quoted} --ignore-not-found')} && "
        f"{kubectl(f'-n kube-system delete addons.k3s.cattle.io {shlex.quote(addon)} --ignore-not-found')} && "
        f"rm -f {quoted}"
    )
