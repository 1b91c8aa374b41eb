#!/usr/bin/env bash
# The project's test command (README quick start, and what CI runs): installs what the tests need,
# then lint, type-check and test. Works on a fresh machine (as root, for the Debian packages); safe to re-run.
set -euo pipefail
export PIP_ROOT_USER_ACTION=ignore
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
bash tests/servers/install.sh  # Samba AD DC, OpenLDAP slapd, Chromium + driver (Debian packages)
python3 -m ruff check auditor connectors tests bench
python3 -m mypy
python3 -m pytest "$@"
