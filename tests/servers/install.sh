#!/usr/bin/env bash
# Installs the real programs the tests run against: Samba AD DC and OpenLDAP slapd (LDAP tests), and
# Chromium with its driver (report tests in a real browser); systemd's systemd-analyze checks deploy/'s units.
# Debian package scripts would start system services; a policy-rc.d forbids that for this install
# only, so nothing but what the tests start ever listens. Idempotent: skips what is installed.
set -euo pipefail
needed=(samba samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind ldb-tools slapd ldap-utils openssl
        chromium chromium-driver systemd)
missing=()
for package in "${needed[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "tests/servers/install.sh: need root to install: ${missing[*]}" >&2
    exit 1
fi
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    created_policy=1
fi
trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
