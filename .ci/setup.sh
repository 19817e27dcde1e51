#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine, skipping what is already there:
# PostgreSQL 15 with pgTAP and pg_cron, pg_prove, Chromium with a font (the report's browser test drives it with
# Playwright: Playwright's own browser download is not used), a virtualenv in .venv with the package and its test extra.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
APT_PACKAGES=(postgresql-15 postgresql-15-pgtap postgresql-15-cron libtap-parser-sourcehandler-pgtap-perl
              chromium fonts-dejavu-core)
# Debian's own python3 needs python3-venv for `-m venv`; another Python (pyenv, uv) already has it.
"$PYTHON" -m venv --help >/dev/null 2>&1 || APT_PACKAGES+=(python3-venv)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian creates and starts a default cluster on port 5432; this project never uses it.
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv" >&2
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
    echo "setup: installing the package and its test extra into .venv" >&2
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[test]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi
