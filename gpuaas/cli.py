"""`gpuaas`: validate and render profiles, and run the local lane's hosts.

gpuaas validate [ENV ...] [--secrets]
                                check profiles (all when none is named), and that their secrets
                                can be read; exit 2 on bad input
gpuaas render ENV [--out DIR]   write the effective per-host configuration under build/ENV
gpuaas local up|list|down [--shape ENV] [--replace]
                                the local lane's systemd containers (local, or shaped like ENV);
                                --replace: replace hosts made for another checkout's lane
gpuaas local setup [--tools]    install what the lane needs on this machine (as root): Debian
                                packages (docker.io, debootstrap, age, openssh-client, chromium), the engine
gpuaas artifacts ENV [--mirror DIR]
                                the environment's artifact lock; fetch and verify every artifact
                                (into DIR with its lock: a mirror for sites without downloads)
gpuaas docs                     regenerate the variable tables of the role READMEs
gpuaas evidence verify ENVELOPE --key PUBLIC.pem
                                verify a signed packet offline: who signed it, what it covers
gpuaas evidence promote ENV [--from ENV] [--packet ENVELOPE ...]
                                may ENV run its pins on the evidence of the environment it is
                                promoted from? exit 1 when not (Markdown for a pull request)
gpuaas evidence public-key ENV  the public key of ENV's evidence signing key, in PEM
gpuaas evidence schema [--check]
                                write (or check) the packet's JSON schema kept in the repository
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gpuaas import artifacts
from gpuaas.docs import update_readmes
from gpuaas.errors import ProfileError, SecretError
from gpuaas.evidence import packet as evidence_packet
from gpuaas.evidence import promote, sign
from gpuaas.lane import LaneError, machine, shapes
from gpuaas.lane import hosts as lane_hosts
from gpuaas.profile import INVENTORY_DIR, REPO_ROOT, display_path, load_profile, resolve_profile_path
from gpuaas.render import RenderError, render
from gpuaas.secrets import generate_missing, unresolvable
from gpuaas.source import source_sha

ENVIRONMENTS = ("local", "dev", "demo", "staging", "prod")


def _validate(args: argparse.Namespace) -> int:
    failed = 0
    for env in args.env or ENVIRONMENTS:
        try:
            profile = load_profile(env)
        except ProfileError as exc:
            print(exc.report(), file=sys.stderr)
            failed += 1
            continue
        problems = unresolvable(profile) if args.secrets else []
        if problems:
            print(ProfileError(profile.source, problems).report(), file=sys.stderr)
            failed += 1
            continue
        count = len(profile.hosts)
        print(
            f"{display_path(resolve_profile_path(env))}: valid ({count} host{'s' if count != 1 else ''}, "
            f"{profile.topology})"
        )
    return 2 if failed else 0


def _render(args: argparse.Namespace) -> int:
    profile = load_profile(args.env)
    build = REPO_ROOT / "build" / profile.name
    out = Path(args.out) if args.out else build
    try:
        # build/ENV also keeps other commands' plans and evidence: render leaves them alone there.
        files = render(profile, out, shared=out.resolve() == build.resolve())
    except RenderError as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"render: cannot write into {out}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"rendered {len(files)} files for {profile.name} into {display_path(out)}")
    return 0


def _lane_profile(args: argparse.Namespace):
    if args.shape:
        return load_profile(shapes.write_shape(args.shape))
    return load_profile(args.profile)


def _say(line: str) -> None:
    """Progress of a long step, shown as it happens."""
    print(line, flush=True)


def _local(args: argparse.Namespace) -> int:
    if args.action == "setup":
        if args.tools:
            machine.ensure_tools(log=_say)
        else:
            machine.setup(log=_say)
        print(f"this machine has {'the programs' if args.tools else 'what'} the local lane needs")
        return 0
    profile = _lane_profile(args)
    inventory = shapes.lane_inventory_path(args.shape) if args.shape else INVENTORY_DIR / f"{profile.name}.py"
    if args.action == "up":
        created = generate_missing(profile)
        if created:
            print(f"generated secrets for {profile.name} into .secrets/{profile.secret_scope}/: {', '.join(created)}")
        hosts = lane_hosts.up(profile, log=_say, replace=args.replace)
        for host in hosts:
            print(f"{host.name:<20} {host.state:<10} {host.address}")
        print(
            f"\n{len(hosts)} hosts up, reached over {profile.connection.kind}"
            f"{' as ' + profile.connection.user if profile.connection.kind == 'ssh' else ''}. Converge them with:\n"
            f"  pyinfra -y {display_path(inventory)} deploys/site.py"
        )
    elif args.action == "list":
        for host in lane_hosts.containers(profile):
            print(f"{host.name:<20} {host.state:<10} {host.address}")
    else:
        removed = lane_hosts.down(profile)
        print(f"removed {len(removed)} hosts" + (f": {', '.join(removed)}" if removed else ""))
    return 0


def _artifacts(args: argparse.Namespace) -> int:
    profile = load_profile(args.env)
    for entry in artifacts.lock_entries(profile.artifacts):
        print(f"{entry['name']:<20} {entry['version']:<10} {entry['sha256']}  {entry['source']}")
    if args.mirror:
        written = artifacts.fill_mirror(profile.artifacts, Path(args.mirror))
        print(
            f"verified {len(written) - 1} artifacts into {args.mirror} (lock: {written[-1].name}); "
            f"deploy with {artifacts.MIRROR_ENV}={args.mirror}"
        )
    else:
        for name, pin in sorted(profile.artifacts.items()):
            artifacts.verified(name, pin)
        print(f"verified {len(profile.artifacts)} artifacts in {display_path(artifacts.CACHE_DIR)}")
    return 0


def _docs(args: argparse.Namespace) -> int:
    changed = update_readmes()
    print(f"updated {len(changed)} role README(s)" + "".join(f"\n  {display_path(p)}" for p in changed))
    return 0


def _evidence(args: argparse.Namespace) -> int:
    return {"verify": _evidence_verify, "promote": _evidence_promote, "public-key": _public_key, "schema": _schema}[
        args.action
    ](args)


def _evidence_verify(args: argparse.Namespace) -> int:
    if not args.target or not args.key:
        print("evidence verify: name the signed packet (ENVELOPE) and --key PUBLIC.pem", file=sys.stderr)
        return 2
    path, key_path = Path(args.target), Path(args.key)
    try:
        key = sign.load_public_key(key_path.read_bytes(), str(key_path))
        verified = sign.verify(json.loads(path.read_text()), key, str(path))
    except OSError as error:
        print(f"evidence verify: {error.filename}: {error.strerror}", file=sys.stderr)
        return 1
    except ValueError:
        print(f"evidence verify: {path}: not JSON", file=sys.stderr)
        return 1
    except sign.EvidenceError as error:
        print(f"evidence verify: {error}", file=sys.stderr)
        return 1
    packet = verified.packet
    print(f"{path}: verified, signed by key {verified.keyid} ({key_path})")
    print(f"  {packet.environment}, read {packet.read_at}, status {packet.status.value}")
    print(
        f"  covers source {packet.source.sha}{' (dirty)' if packet.source.dirty else ''} and {len(packet.artifacts)} "
        "artifacts:"
    )
    for subject in verified.subjects[1:]:
        print(f"    {subject['name']} sha256:{subject['digest']['sha256']}")
    return 0


def _evidence_promote(args: argparse.Namespace) -> int:
    if not args.target:
        print("evidence promote: name the environment to promote into (prod)", file=sys.stderr)
        return 2
    profile = load_profile(args.target)
    origin = args.origin or profile.evidence.promote_from
    if origin is None:
        print(
            f"evidence promote: {profile.source}: evidence.promote_from is not set; name the environment with --from",
            file=sys.stderr,
        )
        return 2
    candidates = [Path(p) for p in args.packet] if args.packet else None
    outcome = promote.check(profile, origin, source_sha(), candidates)
    print(outcome.markdown(), end="")
    return 0 if outcome.passed else 1


def _public_key(args: argparse.Namespace) -> int:
    if not args.target:
        print("evidence public-key: name the environment", file=sys.stderr)
        return 2
    profile = load_profile(args.target)
    try:
        print(sign.public_key_pem(sign.private_key(profile).public_key()), end="")
    except SecretError as error:
        print(f"evidence public-key: {error}", file=sys.stderr)
        return 1
    return 0


def _schema(args: argparse.Namespace) -> int:
    kept = evidence_packet.SCHEMA_PATH
    if args.check:
        current = kept.is_file() and kept.read_text() == evidence_packet.schema_text()
        told = "current" if current else "differs from the packet model: run gpuaas evidence schema"
        print(f"{display_path(kept)}: {told}")
        return 0 if current else 1
    print(f"wrote {display_path(evidence_packet.write_schema())}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="gpuaas", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check environment profiles")
    validate.add_argument("env", nargs="*", help=f"environments ({', '.join(ENVIRONMENTS)}) or profile files")
    validate.add_argument(
        "--secrets",
        action="store_true",
        help="also read every secret the profile uses (those a deploy writes may be absent)",
    )
    validate.set_defaults(run=_validate)
    render_cmd = commands.add_parser("render", help="write the effective per-host configuration")
    render_cmd.add_argument("env")
    render_cmd.add_argument("--out", help="output directory: new, empty, or an earlier render's (default: build/ENV)")
    render_cmd.set_defaults(run=_render)
    local = commands.add_parser("local", help="the local lane's systemd containers")
    local.add_argument("action", choices=("up", "list", "down", "setup"))
    where = local.add_mutually_exclusive_group()
    where.add_argument("--profile", default="local", help="a lane profile: environment or file (default: local)")
    where.add_argument("--shape", choices=shapes.SHIPPED, help="hosts shaped like this shipped profile")
    local.add_argument("--tools", action="store_true", help="setup: only the programs, no Docker engine started")
    local.add_argument(
        "--replace",
        action="store_true",
        help="up: replace hosts of these names made for another checkout's lane (their data is lost)",
    )
    local.set_defaults(run=_local)
    artifacts_cmd = commands.add_parser("artifacts", help="the artifact lock; fetch, verify, fill a mirror")
    artifacts_cmd.add_argument("env")
    artifacts_cmd.add_argument("--mirror", help="copy every verified artifact and the lock into this directory")
    artifacts_cmd.set_defaults(run=_artifacts)
    docs = commands.add_parser("docs", help="regenerate the role READMEs' variable tables")
    docs.set_defaults(run=_docs)
    evidence = commands.add_parser("evidence", help="verify signed packets, check a promotion, the packet schema")
    evidence.add_argument("action", choices=("verify", "promote", "public-key", "schema"))
    evidence.add_argument("target", nargs="?", help="verify: the signed packet; promote, public-key: the environment")
    evidence.add_argument("--key", help="verify: the signer's public key (PEM)")
    evidence.add_argument("--from", dest="origin", help="promote: the environment whose packets prove the pins")
    evidence.add_argument("--packet", action="append", help="promote: a signed packet to consider (repeatable)")
    evidence.add_argument("--check", action="store_true", help="schema: only check that the kept schema is current")
    evidence.set_defaults(run=_evidence)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except ProfileError as exc:
        print(exc.report(), file=sys.stderr)
        return 2
    except artifacts.ArtifactError as exc:
        print(f"artifacts: {exc}", file=sys.stderr)
        return 1
    except LaneError as exc:
        print(f"local lane: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
