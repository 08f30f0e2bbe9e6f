#!/usr/bin/env bash
# Makes sure Debian's qemu-user (qemu-aarch64) and the arm64 C library are here, so the arm64
# bootstrap can run on an x86_64 machine: `qemu-aarch64 -L /usr/aarch64-linux-gnu bootstrap`.
# Installs them with apt when missing (as root, or through sudo).
set -euo pipefail
if command -v qemu-aarch64 >/dev/null && [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "ensure-qemu: run as root, or install qemu-user and libc6-arm64-cross" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -q qemu-user libc6-arm64-cross >/dev/null \
  || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q qemu-user libc6-arm64-cross >/dev/null; } \
  || { echo "ensure-qemu: could not install qemu-user and libc6-arm64-cross with apt" >&2; exit 1; }
echo "ensure-qemu: installed $(qemu-aarch64 --version | head -1)" >&2
