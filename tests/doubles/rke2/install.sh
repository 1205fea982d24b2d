#!/bin/sh
# A test double of RKE2's install.sh (not RKE2's), keeping the contract roles/rke2 relies on: the tar
# method from INSTALL_RKE2_ARTIFACT_PATH (the tarball checked against the release's checksum file, then
# unpacked under INSTALL_RKE2_TAR_PREFIX), and nothing downloaded. Each install is logged.
set -e
fatal() {
    echo "[ERROR] $*" >&2
    exit 1
}
[ -n "${INSTALL_RKE2_ARTIFACT_PATH}" ] || fatal "the install script double downloads nothing: set INSTALL_RKE2_ARTIFACT_PATH"
[ "${INSTALL_RKE2_METHOD:-tar}" = tar ] || fatal "the install script double knows only the tar method"
prefix="${INSTALL_RKE2_TAR_PREFIX:-/usr/local}"
tarball="${INSTALL_RKE2_ARTIFACT_PATH}/rke2.linux-amd64.tar.gz"
expected=$(grep "rke2.linux-amd64.tar.gz" "${INSTALL_RKE2_ARTIFACT_PATH}/sha256sum-amd64.txt" | awk '{print $1}')
actual=$(sha256sum "${tarball}" | awk '{print $1}')
[ "${expected}" = "${actual}" ] || fatal "download sha256 does not match ${expected}, got ${actual}"
mkdir -p "${prefix}"
tar xzf "${tarball}" -C "${prefix}"
systemctl daemon-reload
mkdir -p /var/lib/rancher/rke2
echo "installed ${INSTALL_RKE2_VERSION} ${INSTALL_RKE2_TYPE} from ${INSTALL_RKE2_ARTIFACT_PATH}" >> /var/lib/rancher/rke2/install-double.log
