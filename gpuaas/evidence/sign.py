"""Signing a packet: an in-toto Statement (v1) whose predicate is the packet and whose subjects are the
collection's commit and every pinned artifact's sha256, in a DSSE envelope signed with Ed25519.

The key is the profile's `evidence.signing_key` secret: an Ed25519 private key in PEM, or any other
secret text, from which the key is derived (its sha256 is the Ed25519 seed), so a generated secret
serves as well. Verifying needs only the public key (`gpuaas evidence public-key ENV` prints it).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from google.protobuf import json_format
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import FormatError, VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey

from gpuaas.errors import SecretError
from gpuaas.evidence.packet import Packet, validate
from gpuaas.profile import Profile
from gpuaas.secrets import resolve

PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://gpuaas.dev/evidence/packet/v1"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
#: The subject naming the collection's source: its digest is the git commit.
SOURCE_SUBJECT = "gpuaas-collection"


class EvidenceError(SecretError):
    """A packet that cannot be signed or verified; the message says which and why, never a key."""


@dataclass(frozen=True)
class Verified:
    """A packet whose envelope verified: who signed it and what it covers."""

    packet: Packet
    keyid: str
    subjects: list[dict]


def private_key(profile: Profile) -> Ed25519PrivateKey:
    reference = profile.evidence.signing_key
    if reference is None:
        raise EvidenceError(f"{profile.source}: evidence.signing_key: not set; the packet cannot be signed")
    secret = resolve(profile, reference).reveal()
    if secret.lstrip().startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(secret.encode(), password=None)
        except (ValueError, TypeError):
            key = None
        if not isinstance(key, Ed25519PrivateKey):
            raise EvidenceError(
                f"{profile.source}: evidence.signing_key ({reference}): the PEM is not an unencrypted Ed25519 "
                "private key"
            )
        return key
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(secret.encode()).digest())


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_key(pem: bytes, where: str) -> SSlibKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise EvidenceError(f"{where}: not an Ed25519 public key in PEM")
    return SSlibKey.from_crypto(key)


def keyid_of(key: Ed25519PublicKey) -> str:
    return SSlibKey.from_crypto(key).keyid


def subjects(packet: Packet) -> list[ResourceDescriptor]:
    return [
        ResourceDescriptor(name=SOURCE_SUBJECT, digest={"gitCommit": packet.source.sha}),
        *[ResourceDescriptor(name=a.name, digest={"sha256": a.sha256}) for a in packet.artifacts],
    ]


def statement(packet: Packet) -> dict:
    """The in-toto v1 Statement about the packet, checked by in-toto's own model. The predicate is the
    packet's JSON as it is (protobuf's Struct would turn its integers into floats)."""
    predicate = packet.model_dump(mode="json", by_alias=True)
    made = Statement([s.pb for s in subjects(packet)], PREDICATE_TYPE, predicate)
    made.validate()
    return {**json_format.MessageToDict(made.pb), "predicate": predicate}


def sign(packet: Packet, key: Ed25519PrivateKey) -> dict:
    """The DSSE envelope (as JSON) of the packet's statement, signed with `key`."""
    payload = json.dumps(statement(packet), sort_keys=True, separators=(",", ":")).encode()
    envelope = Envelope(payload=payload, payload_type=PAYLOAD_TYPE, signatures={})
    envelope.sign(CryptoSigner(key))
    return envelope.to_dict()


def verify(document: dict, public_key: SSlibKey, where: str) -> Verified:
    """The packet inside the envelope `document` once its signature verifies with `public_key`, its
    statement is an in-toto v1 one about a packet, the packet matches the schema and the subjects are
    the packet's own. Raises EvidenceError saying which check failed."""
    try:
        # from_dict rewrites the signatures it is given in place: it gets a copy.
        envelope = Envelope.from_dict(copy.deepcopy(document))
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error, FormatError):
        raise EvidenceError(f"{where}: not a DSSE envelope") from None
    if envelope.payload_type != PAYLOAD_TYPE:
        raise EvidenceError(f"{where}: payloadType is {envelope.payload_type!r}, not {PAYLOAD_TYPE}")
    if not envelope.signatures:
        raise EvidenceError(f"{where}: the envelope carries no signature (unsigned packet)")
    try:
        accepted = envelope.verify([public_key], 1)
    except VerificationError:
        raise EvidenceError(
            f"{where}: the signature does not verify with key {public_key.keyid[:16]}… (altered, or signed by "
            "another key)"
        ) from None
    try:
        body = json.loads(envelope.payload)
    except ValueError:
        raise EvidenceError(f"{where}: the payload is not JSON") from None
    if body.get("_type") != STATEMENT_TYPE or body.get("predicateType") != PREDICATE_TYPE:
        raise EvidenceError(f"{where}: not an in-toto v1 statement about an evidence packet")
    problems = validate(body.get("predicate") or {})
    if problems:
        raise EvidenceError(f"{where}: the packet does not match the schema: {'; '.join(problems[:5])}")
    packet = Packet.model_validate(body["predicate"])
    expected = [json_format.MessageToDict(s.pb) for s in subjects(packet)]
    if body.get("subject") != expected:
        raise EvidenceError(f"{where}: the statement's subjects are not the packet's artifacts and source")
    return Verified(packet, next(iter(accepted)), body["subject"])


def envelope_packet(document: dict) -> dict:
    """The packet inside an envelope, unverified: for listing packets, never for trusting one."""
    return json.loads(base64.b64decode(document["payload"]))["predicate"]
