#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine for mcutool: cross toolchains, QEMU, openocd, and the Python package
# (editable, with the test oracles). Run from the checkout: bash install.sh
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    qemu-system-arm qemu-system-misc gcc-arm-none-eabi libnewlib-arm-none-eabi \
    gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf openocd >/dev/null

python3 -m pip install -q --disable-pip-version-check -e ".[test]"
mcutool --version
