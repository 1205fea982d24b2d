"""Field types shared by the profile schema and the roles' settings."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field

SECRET_REF = re.compile(r"^secret:([a-z][a-z0-9_]*)$")


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
