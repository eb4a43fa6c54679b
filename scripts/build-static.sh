#!/bin/bash
# build-static.sh: build dist/htexctl, one fully static executable that runs
# on any x86-64 Linux node whatever its distribution and glibc, plus
# dist/htexctl.sha256. Use it as the worker command on clusters whose compute
# nodes do not run the build machine's OS (see README, "The static binary").
#
#   libzmq    Debian's own source package of the version this release ships
#             (apt-get source through a deb-src entry that lives only for the
#             run, in a private apt state directory), built static without
#             GSSAPI, PGM, NORM, libbsd and libunwind, with libsodium for CURVE;
#   libsodium Debian's libsodium-dev static archive;
#   SQLite    compiled in by github.com/mattn/go-sqlite3 (load_extension off:
#             it would need dlopen);
#   Go        netgo and osusergo (no NSS lookups from Go), linked externally
#             with -static.
#
# What it builds is cached in $HTEX_STATIC_CACHE (default .cache/static in
# the repository), keyed by Debian release and package versions, so a second
# run only relinks (seconds). Needs root or sudo for apt-get when build tools
# are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
repo=$(pwd)

cache=${HTEX_STATIC_CACHE:-$repo/.cache/static}
out=${HTEX_STATIC_OUT:-$repo/dist}
log() { echo "build-static: $*" >&2; }
die() { log "$*"; exit 1; }

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

need=(dpkg-dev autoconf automake libtool pkg-config g++ make libsodium-dev libzmq3-dev)
missing=()
for p in "${need[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
		$SUDO apt-get update -q >/dev/null
		$SUDO apt-get install -y -q "${missing[@]}" >/dev/null
	}
fi
command -v go >/dev/null || die "Go 1.26 or newer is needed on PATH (https://go.dev/dl/)"

# The versions this release ships: libzmq5's candidate is what the dynamic
# build links, so the static binary speaks the same library.
. /etc/os-release
codename=${VERSION_CODENAME:?/etc/os-release has no VERSION_CODENAME}
zmq_deb=$(dpkg-query -W -f='${Version}' libzmq3-dev)
sodium_deb=$(dpkg-query -W -f='${Version}' libsodium-dev)
sodium_a=$(find /usr/lib -name libsodium.a -print -quit)
[ -n "$sodium_a" ] || die "libsodium-dev has no static archive (libsodium.a)"
key="$ID-$codename-zeromq3_$zmq_deb-libsodium_$sodium_deb"
prefix=$cache/$key/prefix

if [ ! -f "$prefix/lib/libzmq.a" ]; then
	start=$SECONDS
	work=$cache/$key/src
	rm -rf "$work" && mkdir -p "$work"
	# A deb-src entry for this run only: its own sources directory, lists
	# and cache under $work, so the machine's apt configuration and state
	# are never touched.
	apt=$work/apt
	mkdir -p "$apt/parts" "$apt/lists/partial" "$apt/cache/archives/partial"
	mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
	cat >"$apt/parts/htex-deb-src.sources" <<-EOF
		Types: deb-src
		URIs: ${mirror:-http://deb.debian.org/debian}
		Suites: $codename
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	aptopt=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt/parts"
		-o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "APT::Sandbox::User=root")
	log "fetching Debian's zeromq3 $zmq_deb source"
	apt-get "${aptopt[@]}" update -q >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; die "apt-get update (deb-src) failed"; }
	(cd "$work" && apt-get "${aptopt[@]}" source --download-only "zeromq3=$zmq_deb") >>"$work/apt.log" 2>&1 ||
		{ cat "$work/apt.log" >&2; die "apt-get source zeromq3=$zmq_deb failed"; }
	rm -rf "$apt"
	(cd "$work" && dpkg-source -x "zeromq3_$zmq_deb.dsc" zeromq) >>"$work/apt.log" 2>&1 ||
		{ cat "$work/apt.log" >&2; die "dpkg-source -x failed"; }

	log "building libzmq (static, CURVE through libsodium; no GSSAPI, PGM, NORM)"
	(
		cd "$work/zeromq"
		./autogen.sh
		./configure --prefix="$prefix" --enable-static --disable-shared --with-pic \
			--with-libsodium --disable-curve-keygen --disable-perf --without-docs \
			--without-libgssapi_krb5 --without-pgm --without-norm \
			--disable-libbsd --disable-libunwind --disable-Werror --disable-drafts
		make -j"$(nproc)"
		make install
	) >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; die "libzmq build failed (log: $work/build.log)"; }
	grep -q "ZMQ_USE_LIBSODIUM 1" "$work/zeromq/src/platform.hpp" || die "libzmq was configured without libsodium"
	rm -rf "$work"
	log "libzmq built in $((SECONDS - start)) s, cached in $cache/$key"
fi

# cgo asks pkg-config for libzmq without --static; this wrapper adds it, so
# the link line carries libzmq's private dependencies (libsodium, libstdc++).
mkdir -p "$cache/bin"
cat >"$cache/bin/pkg-config" <<-'EOF'
	#!/bin/sh
	exec /usr/bin/pkg-config --static "$@"
EOF
chmod +x "$cache/bin/pkg-config"

zmq_ver=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --modversion libzmq)
sodium_ver=$(pkg-config --modversion libsodium)
linked="libzmq $zmq_ver (Debian zeromq3 $zmq_deb, static, CURVE via libsodium); libsodium $sodium_ver (Debian libsodium-dev $sodium_deb, static)"

mkdir -p "$out"
log "linking $out/htexctl"
PKG_CONFIG="$cache/bin/pkg-config" PKG_CONFIG_PATH="$prefix/lib/pkgconfig" \
	PKG_CONFIG_LIBDIR="$prefix/lib/pkgconfig:/usr/lib/x86_64-linux-gnu/pkgconfig:/usr/share/pkgconfig" \
	CGO_ENABLED=1 go build -trimpath -o "$out/htexctl.tmp" \
	-tags 'netgo osusergo sqlite_omit_load_extension' \
	-ldflags "-s -w -linkmode external -extldflags '-static' -X 'github.com/htex/htex/cmd/htexctl/app.linkedLibraries=$linked'" \
	./cmd/htexctl 2>"$cache/link.log" || { cat "$cache/link.log" >&2; die "go build failed"; }
# The linker warns that two libzmq functions need glibc's shared NSS modules
# at run time: ipc_listener_t::filter (getpwnam/getgrgid, used only with
# ZMQ_IPC_FILTER_* options, which htex never sets) and getaddrinfo, which
# htex only ever gives numeric addresses (internal/zsock.NumericHosts), a
# case glibc answers without NSS. Anything else is shown.
grep -v -e '^# github.com/htex/htex/cmd/htexctl$' \
	-e 'in function .zmq::ipc_listener_t::filter' -e 'in function .zmq::ip_resolver_t::do_getaddrinfo' \
	-e 'requires at runtime the shared libraries from the glibc version used for linking' \
	"$cache/link.log" >&2 || true
mv "$out/htexctl.tmp" "$out/htexctl"

# A dynamic executable here would defeat the point: refuse it.
if ldd "$out/htexctl" >/dev/null 2>&1; then
	ldd "$out/htexctl" >&2
	die "$out/htexctl is not static"
fi
case "$("$out/htexctl" version --verbose)" in
*"static: yes"*) ;;
*) die "$out/htexctl does not report itself static" ;;
esac
(cd "$out" && sha256sum htexctl >htexctl.sha256)
log "$out/htexctl: $(du -h "$out/htexctl" | cut -f1), sha256 $(cut -d' ' -f1 "$out/htexctl.sha256")"
