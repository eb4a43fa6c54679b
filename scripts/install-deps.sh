#!/bin/bash
# install-deps.sh [--slurm|--figures]: install the system packages htex
# needs when they are missing (Debian/Ubuntu, as root or with sudo):
# libzmq3-dev and pkg-config to build; with --slurm also slurm-wlm and
# munge for the integration tests, and busybox-static, the only program
# besides htexctl on the empty node image of the static-binary test, and
# tmux, the terminal the `htexctl top` test runs it in; with --figures jq
# and gnuplot-nox for scripts/scale-figures.sh and plot-scale.sh (no test
# needs them). Go itself must be on PATH (or at /usr/local/go).
set -eu

pkgs=(libzmq3-dev pkg-config)
[ "${1:-}" = "--slurm" ] && pkgs+=(slurm-wlm munge busybox-static tmux)
[ "${1:-}" = "--figures" ] && pkgs+=(jq gnuplot-nox)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "install-deps: installing ${missing[*]}"
	SUDO=
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
		$SUDO apt-get update -q >/dev/null
		$SUDO apt-get install -y -q "${missing[@]}" >/dev/null
	}
fi

if ! command -v go >/dev/null 2>&1; then
	if [ -x /usr/local/go/bin/go ]; then
		echo "install-deps: Go is at /usr/local/go/bin; add it to PATH" >&2
	else
		echo "install-deps: Go 1.26 or newer is needed (https://go.dev/dl/)" >&2
		exit 1
	fi
fi
