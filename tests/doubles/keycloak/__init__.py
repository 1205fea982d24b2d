"""Build the Keycloak double's distribution zip, laid out like the official keycloak-X.Y.Z.zip."""

from __future__ import annotations

import zipfile
from pathlib import Path

HERE = Path(__file__).parent
VERSION = "0.0.0"
KC_SH = (
    "#!/bin/sh\n# Keycloak test double (tests/doubles/keycloak), not Keycloak.\n"
    'exec python3 "$(dirname "$0")/kc_double.py" "$@"\n'
)
# A fixed time stamp makes the zip byte-identical on every build, so its sha256 pin holds.
STAMP = (2026, 1, 1, 0, 0, 0)


def build_zip(directory: Path) -> Path:
    """keycloak-0.0.0.zip in `directory`: bin/kc.sh, conf/, lib/quarkus/, data/import/, version.txt."""
    top = f"keycloak-{VERSION}"
    members = {
        f"{top}/bin/kc.sh": (KC_SH, 0o755),
        f"{top}/bin/kc_double.py": ((HERE / "kc_double.py").read_text(), 0o644),
        f"{top}/conf/keycloak.conf": ("# the double's default configuration\n", 0o644),
        f"{top}/lib/quarkus/README": ("build output\n", 0o644),
        f"{top}/data/import/README": ("realms to import\n", 0o644),
        f"{top}/version.txt": (f"Keycloak - Version {VERSION}\n", 0o644),
    }
    archive = directory / f"{top}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as packed:
        for name, (text, mode) in members.items():
            info = zipfile.ZipInfo(name, date_time=STAMP)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            packed.writestr(info, text)
    return archive
