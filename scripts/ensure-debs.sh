#!/usr/bin/env bash
# Install the Debian packages named on the command line that are not installed yet.
#
#   scripts/ensure-debs.sh PACKAGE...
#
# Quiet and non-interactive; runs apt-get update only when apt does not know a package yet (a
# fresh machine has empty package lists) or when an install from stale lists fails. Runs as root,
# or through sudo when there is one. Prints one line per thing it does.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 PACKAGE..." >&2
    exit 2
fi

missing=()
for pkg in "$@"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "ensure-debs: already installed: $*"
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo -n)
    else
        echo "ensure-debs: not root and no sudo; install by hand: ${missing[*]}" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
# Wait for another apt/dpkg run (a parallel job, unattended upgrades) instead of failing at once.
apt_opts=(-q -q -y -o DPkg::Lock::Timeout=300 --no-install-recommends)

update() {
    echo "ensure-debs: apt-get update"
    "${sudo[@]}" apt-get -q -q -o DPkg::Lock::Timeout=300 update
}

unknown=0
for pkg in "${missing[@]}"; do
    if ! apt-cache show "$pkg" >/dev/null 2>&1; then
        unknown=1
    fi
done
if [ "$unknown" -eq 1 ]; then
    update
fi

echo "ensure-debs: apt-get install ${missing[*]}"
if ! "${sudo[@]}" apt-get install "${apt_opts[@]}" "${missing[@]}" >/dev/null; then
    if [ "$unknown" -eq 0 ]; then
        echo "ensure-debs: install failed; refreshing the package lists and trying again"
        update
        "${sudo[@]}" apt-get install "${apt_opts[@]}" "${missing[@]}" >/dev/null
    else
        exit 1
    fi
fi
echo "ensure-debs: installed ${missing[*]}"
