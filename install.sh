#!/usr/bin/env bash
# Installs everything vcbench and its test suite need on a fresh Debian machine with Python 3.11:
# system packages (Chromium for the HTML report test, ffmpeg libraries come with PyAV's wheel),
# then the package in editable mode with the test extras (torch 2.14.1 / torchvision 0.29.1 pinned).
set -euo pipefail
cd "$(dirname "$0")"
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1 && ! command -v chromium >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
python3 -m pip install --disable-pip-version-check -q -e ".[test]"
