#!/usr/bin/env bash
# Prepare a fresh Debian machine: system packages, a virtualenv, the project.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# LibreOffice (calc, writer), poppler-utils and a Times-compatible font: the report tests print the
# XLSX and DOCX report to PDF and check the pages. Chromium (and its driver): the web console's browser tests.
SYSTEM_PACKAGES=(ffmpeg espeak-ng sox libsox-fmt-mp3 icecast2 libreoffice-calc libreoffice-writer poppler-utils
                 fonts-liberation chromium chromium-driver)
missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "Installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
