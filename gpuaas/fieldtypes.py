"""Field types shared by the profile schema and the roles' settings."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field

SECRET_REF = re.compile(r"^secret:([a-z][a-z0-9_]*)\Z")


def _secret_ref(value: Any) -> str:
    if not isinstance(value, str) or not SECRET_REF.match(value):
        # The input may be a real credential: never echo it.
        raise ValueError(
            "expected a secret reference 'secret:<name>'; a plain value is not allowed here (value not shown)"
        )
    return value


#: A reference to a secret of the profile's `secrets:`, never a value.
SecretRef = Annotated[Any, AfterValidator(_secret_ref)]
Port = Annotated[int, Field(ge=1, le=65535)]

#: `json_schema_extra` of a SecretRef field whose secret a deploy writes (OpenBao's init output): its
#: source may not exist before that deploy has run, so it is not required up front.
WRITTEN_BY_DEPLOY = {"written_by_deploy": True}

#: A Kubernetes label name (the part after an optional `PREFIX/`, and a label value), and the optional
#: DNS-subdomain prefix of a label key.
K8S_LABEL_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")
K8S_LABEL_PREFIX = re.compile(r"(?=.{1,253}\Z)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


def label_key_problem(key: str) -> str | None:
    """Why `key` is not a Kubernetes label key, in words; None when it is one."""
    prefix, _, name = key.rpartition("/")
    if "/" in prefix or (_ and not K8S_LABEL_PREFIX.fullmatch(prefix)) or not K8S_LABEL_NAME.fullmatch(name):
        return (
            "a label key is an optional DNS-subdomain prefix (lower-case, at most 253 characters) and '/', "
            "then a name of at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or "
            "digit"
        )
    return None


def label_value_problem(value: str) -> str | None:
    """Why `value` is not a Kubernetes label value, in words; None when it is one."""
    if value and not K8S_LABEL_NAME.fullmatch(value):
        return (
            "a label value is empty or at most 63 letters, digits, '-', '_' and '.', starting and ending with "
            "a letter or digit"
        )
    return None
