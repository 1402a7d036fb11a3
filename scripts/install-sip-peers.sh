#!/bin/sh
# Install the real SIP peers the tests and the load bench drive: SIPp (Debian
# package sip-tester) and baresip.
#
#     sudo scripts/install-sip-peers.sh
#
# Idempotent: when both `sipp` and `baresip` are on PATH it changes nothing.
# Otherwise it runs `apt-get update` once and installs the two packages without
# their recommended extras (Debian 12 "bookworm"; root, as in CI). It exits
# non-zero, saying why, when it cannot: no apt-get, not root, or a package that
# will not install. Without the peers their tests skip, except under CI=true,
# where they fail.
set -eu

have() { command -v "$1" >/dev/null 2>&1; }

versions() {
	# `sipp -v` exits 99 after printing its banner; keep only the version line.
	printf '%s\n' "$(sipp -v 2>&1 | grep -m1 -i 'sipp v' | sed 's/^ *//')"
	printf 'baresip %s\n' "$(dpkg-query -W -f '${Version}' baresip 2>/dev/null || echo '(version unknown)')"
}

if have sipp && have baresip; then
	echo "SIP peers already installed:"
	versions
	exit 0
fi

if ! have apt-get; then
	echo "install-sip-peers: no apt-get here; install SIPp (sip-tester) and baresip by hand" >&2
	exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if have sudo; then
		SUDO="sudo"
	else
		echo "install-sip-peers: must run as root (or with sudo) to install packages" >&2
		exit 1
	fi
fi

# env, not export: sudo would not pass an exported variable on.
if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update; then
	echo "install-sip-peers: apt-get update failed (network or sources?)" >&2
	exit 1
fi
if ! $SUDO env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y --no-install-recommends sip-tester baresip; then
	echo "install-sip-peers: apt-get install sip-tester baresip failed" >&2
	exit 1
fi

for tool in sipp baresip; do
	if ! have "$tool"; then
		echo "install-sip-peers: $tool is still not on PATH after installing" >&2
		exit 1
	fi
done

echo "SIP peers installed:"
versions
