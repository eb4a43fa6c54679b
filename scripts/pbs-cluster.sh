#!/bin/bash
# pbs-cluster.sh up|down|status
#
# A real four-node OpenPBS (server, scheduler, comm and four moms pbs1..pbs4)
# on this one machine, for the PBS integration tests and CI. The facts it
# relies on, with their sources: docs/local-pbs.md. Must run as root.
#
#   up      install MPICH (mpich, libmpich-dev: the tests' tasks run
#           mpiexec) when missing, build OpenPBS into /opt/pbs when it is
#           missing (or restore it from the cache), start the daemons and
#           wait until the four nodes are free. Does nothing more when the
#           cluster is already healthy.
#   down    delete the jobs, stop every daemon this script started (through
#           PBS's own init script, by configuration file), remove the
#           addresses and /etc/hosts lines it added. Safe to run twice.
#   status  print the daemons and pbsnodes; exit 0 only when healthy.
#
# Environment:
#   HTEX_PBS_SOURCE   the OpenPBS source tarball (default: the first of
#                     $HTEX_PBS_CACHE/openpbs-$COMMIT.tar.gz and
#                     /work/shared/vendor/openpbs-$COMMIT.tar.gz; when none
#                     exists it is downloaded from GitHub and checked)
#   HTEX_PBS_CACHE    cache of built /opt/pbs trees (default .cache/openpbs
#                     in the repository, gitignored), one tarball per Debian
#                     release and source commit
#   HTEX_PBS_TIMEOUT  seconds to wait for the nodes (default 90)

set -u
cd "$(dirname "$0")/.." || exit 1
repo=$(pwd)

COMMIT=cd7ab5edaf03dcac2f1cb9e2f42d75eb117d468a
SHORT=${COMMIT:0:7}
SOURCE_SHA256=008f253774cf9e64f56c7e254913c9ef5306068f68e1be84a0924d7005c71287
PREFIX=/opt/pbs
CACHE=${HTEX_PBS_CACHE:-$repo/.cache/openpbs}
TIMEOUT=${HTEX_PBS_TIMEOUT:-90}

say() { echo "pbs-cluster: $*"; }
die() {
	echo "pbs-cluster: error: $*" >&2
	exit 1
}

need_root() {
	[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages, builds into $PREFIX and starts the PBS daemons)"
}

# Debian packages to build OpenPBS (its INSTALL file), and to run it
# (PostgreSQL is its data store; ip adds the nodes' addresses).
BUILD_PKGS=(gcc g++ make libtool autoconf automake pkg-config libhwloc-dev
	libx11-dev libxt-dev libedit-dev libical-dev libncurses-dev perl
	postgresql-server-dev-all postgresql postgresql-contrib python3-dev tcl-dev
	tk-dev swig libexpat1-dev libssl-dev libxext-dev libxft-dev libcjson-dev sudo)
RUN_PKGS=(postgresql postgresql-contrib libhwloc15 libical3 libcjson1 libedit2
	tcl8.6 tk8.6 libpython3.11 libpq5 sudo iproute2)
# What the PBS tests' tasks run: MPICH's hydra mpiexec, and mpicc for their
# MPI program (e2e/openpbs_mpi_test.go; docs/guide.md, "Tasks that start
# job steps").
TEST_PKGS=(mpich libmpich-dev)

apt_install() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
		apt-get update -q >/dev/null || die "apt-get update failed"
		apt-get install -y -q "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
	}
}

cache_key() {
	. /etc/os-release
	echo "${ID}-${VERSION_CODENAME:-$VERSION_ID}-openpbs-$SHORT"
}

# source_tarball prints the path of a checked OpenPBS source tarball.
source_tarball() {
	local t
	for t in "${HTEX_PBS_SOURCE:-}" "$CACHE/openpbs-$SHORT.tar.gz" "/work/shared/vendor/openpbs-$SHORT.tar.gz"; do
		[ -n "$t" ] && [ -s "$t" ] && { echo "$t"; return 0; }
	done
	mkdir -p "$CACHE"
	t=$CACHE/openpbs-$SHORT.tar.gz
	say "downloading the OpenPBS source at $SHORT from GitHub" >&2
	apt_install curl ca-certificates >&2
	curl -fsSL -o "$t.tmp" "https://github.com/openpbs/openpbs/archive/$COMMIT.tar.gz" ||
		die "no OpenPBS source: set HTEX_PBS_SOURCE to openpbs-$SHORT.tar.gz (download failed)"
	echo "$SOURCE_SHA256  $t.tmp" | sha256sum -c --quiet >/dev/null 2>&1 ||
		say "warning: the downloaded tarball's sha256 differs from the vendored one's (GitHub re-packed it?)" >&2
	mv "$t.tmp" "$t"
	echo "$t"
}

# build: /opt/pbs from the cache, or built from source and then cached.
build() {
	local key tarball src log t0=$SECONDS
	key=$(cache_key)
	tarball=$CACHE/$key.tar.gz
	if [ -x "$PREFIX/sbin/pbs_server" ] && [ "$(cat "$PREFIX/.htex-build" 2>/dev/null)" = "$key" ]; then
		apt_install "${RUN_PKGS[@]}"
		return 0
	fi
	[ -e "$PREFIX" ] && ! [ -f "$PREFIX/.htex-build" ] &&
		die "$PREFIX exists and was not built by this script; move it away"
	if [ -s "$tarball" ]; then
		apt_install "${RUN_PKGS[@]}"
		say "restoring $PREFIX from $tarball"
		rm -rf "$PREFIX"
		tar -C / -xzf "$tarball" || die "cannot unpack $tarball"
		say "restored in $((SECONDS - t0)) s"
		return 0
	fi
	apt_install "${BUILD_PKGS[@]}" iproute2
	src=$(mktemp -d /var/tmp/htex-pbs-src.XXXXXX)
	log=$src/build.log
	say "building OpenPBS $SHORT into $PREFIX (a few minutes; log $log)"
	tar -C "$src" -xzf "$(source_tarball)" || die "cannot unpack the OpenPBS source"
	(
		set -e
		cd "$src"/openpbs-*/ # openpbs-<commit>: short in the vendored copy, full from GitHub
		./autogen.sh
		# --with-python=/usr: a python3 earlier on PATH (pyenv) breaks the build.
		./configure --prefix="$PREFIX" --with-python=/usr
		make -j"$(nproc)"
		rm -rf "$PREFIX"
		make install
	) >"$log" 2>&1 || {
		tail -n 30 "$log" >&2
		die "OpenPBS build failed (log $log)"
	}
	chmod 4755 "$PREFIX/sbin/pbs_iff" "$PREFIX/sbin/pbs_rcp"
	echo "$key" >"$PREFIX/.htex-build"
	mkdir -p "$CACHE"
	tar -C / -czf "$tarball.tmp" "${PREFIX#/}" && mv "$tarball.tmp" "$tarball"
	rm -rf "$src"
	say "built in $((SECONDS - t0)) s, cached as $tarball"
}


# --- the cluster -----------------------------------------------------------
#
# Five names on five addresses of 198.18.0.0/15 (RFC 2544's benchmarking
# range, never routed on the Internet) added to the loopback device: pbshost
# (server, scheduler, comm) and pbs1..pbs4 (one mom each). Traffic to them
# never leaves this machine. PBS refuses only 127.0.0.0/8 as a host's
# address (OpenPBS src/lib/Libnet/hnls.c, get_all_ips), not other addresses
# on lo. Distinct addresses give the nodes distinct names in $PBS_NODEFILE
# and exec_host. The /etc/hosts lines carry a marker; no other line of
# /etc/hosts is touched (the local Slurm uses this host's own name).
SERVER=pbshost
SERVER_ADDR=198.18.0.10
NODES=(pbs1 pbs2 pbs3 pbs4)
NODE_ADDRS=(198.18.0.11 198.18.0.12 198.18.0.13 198.18.0.14)
# pbs_comm's default port 17001 is one of the local Slurm's slurmd ports.
COMM_PORT=17101
FIRST_MOM_PORT=15011 # then 15013, 15015, 15017; each +1 is the mom's manager port
HOSTS_MARK="# htex scripts/pbs-cluster.sh"
CONF=/etc/pbs.conf
HOME_MAIN=/var/spool/pbs
# Each mom's PBS_HOME; not under a world-writable folder (pbs_mom refuses it).
mom_home() { echo "/var/spool/pbs-htex-$1"; }
mom_conf() { echo "/etc/pbs.conf.htex-$1"; }
mom_port() { echo $((FIRST_MOM_PORT + 2 * $1)); }
CONF_MARK=$HOME_MAIN/.htex-pbs-cluster

export PATH=$PREFIX/bin:$PREFIX/sbin:$PATH

setup_network() {
	local i name addr
	for ((i = 0; i <= ${#NODES[@]}; i++)); do
		if [ "$i" -eq 0 ]; then addr=$SERVER_ADDR; else addr=${NODE_ADDRS[i - 1]}; fi
		ip -4 addr show dev lo | grep -q " $addr/32 " ||
			ip addr add "$addr/32" dev lo || die "cannot add $addr to the loopback device (ip addr add)"
	done
	sed -i "\\|  *$HOSTS_MARK\$|d" /etc/hosts
	{
		echo "$SERVER_ADDR $SERVER $HOSTS_MARK"
		for ((i = 0; i < ${#NODES[@]}; i++)); do
			echo "${NODE_ADDRS[i]} ${NODES[i]} $HOSTS_MARK"
		done
	} >>/etc/hosts
	for name in "$SERVER" "${NODES[@]}"; do
		getent hosts "$name" | grep -q '^198\.18\.' || die "$name does not resolve to its 198.18.0.x address (nsswitch?)"
	done
}

teardown_network() {
	local addr
	for addr in "$SERVER_ADDR" "${NODE_ADDRS[@]}"; do
		ip -4 addr show dev lo | grep -q " $addr/32 " && ip addr del "$addr/32" dev lo
	done
	sed -i "\\|  *$HOSTS_MARK\$|d" /etc/hosts
}

# write_conf FILE HOME START_SERVER START_MOM [NODE PORT]
write_conf() {
	local file=$1 home=$2 server=$3 mom=$4 node=${5:-} port=${6:-}
	{
		echo "PBS_EXEC=$PREFIX"
		echo "PBS_HOME=$home"
		echo "PBS_SERVER=$SERVER"
		echo "PBS_SERVER_HOST_NAME=$SERVER"
		echo "PBS_START_SERVER=$server"
		echo "PBS_START_SCHED=$server"
		echo "PBS_START_COMM=$server"
		echo "PBS_START_MOM=$mom"
		echo "PBS_COMM_NAME=$SERVER:$COMM_PORT"
		echo "PBS_LEAF_ROUTERS=$SERVER:$COMM_PORT"
		if [ -n "$node" ]; then
			echo "PBS_MOM_NODE_NAME=$node"
			echo "PBS_LEAF_NAME=$node"
			echo "PBS_MOM_SERVICE_PORT=$port"
			echo "PBS_MANAGER_SERVICE_PORT=$((port + 1))"
		else
			echo "PBS_LEAF_NAME=$SERVER"
		fi
		echo "PBS_CORE_LIMIT=unlimited"
		echo "PBS_SCP=/usr/bin/scp"
	} >"$file.tmp" && mv "$file.tmp" "$file"
}

# init_home CONF: PBS_HOME from PBS's own pbs_habitat (the server's also
# initialises PBS's PostgreSQL data store).
init_home() {
	PBS_CONF_FILE=$1 "$PREFIX/libexec/pbs_habitat" >"$STATE_LOG" 2>&1 || {
		cat "$STATE_LOG" >&2
		die "pbs_habitat failed for $1"
	}
}

# mom_config HOME: copy job files with cp (there is no sshd here: without
# $usecp PBS copies .o/.e files with scp, the job sits in E for ~95 s), and
# poll the jobs every 1 to 5 s instead of 10 to 120 s (OpenPBS
# src/resmom/mom_main.c, MIN/MAX_CHECK_POLL_TIME), so that a job past its
# walltime ends within seconds.
mom_config() {
	local cfg=$1/mom_priv/config line
	for line in '$usecp *:/ /' "\$clienthost $SERVER" '$min_check_poll 1' '$max_check_poll 5'; do
		grep -qF "${line%% *}" "$cfg" 2>/dev/null || echo "$line" >>"$cfg"
	done
}

initd() { # initd CONF start|stop|status
	PBS_CONF_FILE=$1 "$PREFIX/libexec/pbs_init.d" "$2"
}

STATE_LOG=/var/tmp/htex-pbs-cluster.log

qm() { qmgr -c "$*" >/dev/null; }

# lockpid FILE NAME: the pid in a PBS lock file when it runs NAME.
lockpid() {
	local pid
	pid=$(head -n 1 "$1" 2>/dev/null | tr -dc '0-9')
	[ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] && echo "$pid"
}

daemons() { # one "name pid-or-down" line per daemon
	local i n
	echo "pbs_server $(lockpid "$HOME_MAIN/server_priv/server.lock" pbs_server.bin || echo down)"
	echo "pbs_sched $(lockpid "$HOME_MAIN/sched_priv/sched.lock" pbs_sched || echo down)"
	echo "pbs_comm $(lockpid "$HOME_MAIN/server_priv/comm.lock" pbs_comm || echo down)"
	for ((i = 0; i < ${#NODES[@]}; i++)); do
		n=${NODES[i]}
		echo "pbs_mom:$n $(lockpid "$(mom_home "$n")/mom_priv/mom.lock" pbs_mom || echo down)"
	done
}

# node_states: "name state" per node, nothing when pbsnodes fails.
node_states() {
	timeout 10 pbsnodes -a 2>/dev/null | awk '/^[^ \t]/ {n=$1} /^[ \t]+state = / {print n, $3}'
}

healthy() {
	daemons | grep -q ' down$' && return 1
	local free
	free=$(node_states | awk '$2 == "free" || $2 == "job-busy" {print $1}' | sort -u | wc -l)
	[ "$free" -eq ${#NODES[@]} ]
}

server_up() {
	local i
	for ((i = 0; i < 100; i++)); do
		timeout 10 qstat -B >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

configure_server() {
	local i n
	qm "set server job_history_enable = True"
	qm "set server acl_roots = root"
	qm "set server scheduler_iteration = 10"
	qm "set server flatuid = True"
	# What ALCF's site files ask for that OpenPBS does not define: the
	# custom resources filesystems (-l filesystems=home:eagle) and ngpus
	# (select=N:ngpus=4, a host-level consumable as PBS Professional's
	# Administrator's Guide defines GPUs), and the queue debug.
	qmgr -c "list resource filesystems" >/dev/null 2>&1 || qm "create resource filesystems type=string"
	qmgr -c "list resource ngpus" >/dev/null 2>&1 || qm "create resource ngpus type=long, flag=nh"
	if ! qmgr -c "list queue debug" >/dev/null 2>&1; then
		qm "create queue debug queue_type=execution"
		qm "set queue debug enabled=True, started=True"
	fi
	for ((i = 0; i < ${#NODES[@]}; i++)); do
		n=${NODES[i]}
		if ! qmgr -c "list node $n" >/dev/null 2>&1; then
			qm "create node $n Mom=$n,port=$(mom_port "$i")" || die "qmgr create node $n failed"
		fi
	done
}

up() {
	need_root
	apt_install "${TEST_PKGS[@]}"
	if [ -x "$PREFIX/sbin/pbs_server" ] && healthy; then
		say "already up: ${#NODES[@]} nodes"
		return 0
	fi
	local t0=$SECONDS i n home
	build
	setup_network
	if [ -e "$CONF" ] && ! [ -f "$CONF_MARK" ] && ! grep -qx "PBS_SERVER=$SERVER" "$CONF"; then
		die "$CONF exists and was not written by this script; move it away"
	fi
	down_daemons quiet
	write_conf "$CONF" "$HOME_MAIN" 1 0
	if ! [ -f "$CONF_MARK" ]; then
		rm -rf "$HOME_MAIN"
		init_home "$CONF"
		touch "$CONF_MARK"
	fi
	say "starting pbs_server, pbs_sched and pbs_comm on $SERVER ($SERVER_ADDR, comm port $COMM_PORT)"
	initd "$CONF" start >"$STATE_LOG" 2>&1 || {
		cat "$STATE_LOG" >&2
		die "PBS did not start (its own init script failed)"
	}
	server_up || die "pbs_server does not answer qstat -B"
	for ((i = 0; i < ${#NODES[@]}; i++)); do
		n=${NODES[i]}
		home=$(mom_home "$n")
		write_conf "$(mom_conf "$n")" "$home" 0 1 "$n" "$(mom_port "$i")"
		[ -f "$home/pbs_version" ] || init_home "$(mom_conf "$n")"
		mom_config "$home"
		initd "$(mom_conf "$n")" start >"$STATE_LOG" 2>&1 || {
			cat "$STATE_LOG" >&2
			die "pbs_mom of $n did not start"
		}
	done
	configure_server
	say "waiting up to ${TIMEOUT}s for ${#NODES[@]} free nodes"
	local deadline=$((SECONDS + TIMEOUT))
	until healthy; do
		if [ $SECONDS -ge $deadline ]; then
			daemons >&2
			timeout 10 pbsnodes -a >&2
			die "not up after ${TIMEOUT}s (logs in $HOME_MAIN/server_logs and $(mom_home "${NODES[0]}")/mom_logs)"
		fi
		sleep 0.5
	done
	say "up in $((SECONDS - t0)) s: nodes ${NODES[*]} free (server $SERVER, config $CONF)"
}

# down_daemons [quiet]: delete the jobs, stop the moms, then the server,
# scheduler, comm and PBS's PostgreSQL, with PBS's own init script.
down_daemons() {
	local n i
	if lockpid "$HOME_MAIN/server_priv/server.lock" pbs_server.bin >/dev/null; then
		local jobs
		jobs=$(timeout 10 qselect 2>/dev/null)
		if [ -n "$jobs" ]; then
			[ -n "${1:-}" ] || say "deleting jobs: $(echo $jobs)"
			# shellcheck disable=SC2086
			timeout 30 qdel -W force $jobs >/dev/null 2>&1
		fi
	fi
	for n in "${NODES[@]}"; do
		[ -f "$(mom_conf "$n")" ] || continue
		initd "$(mom_conf "$n")" stop >>"$STATE_LOG" 2>&1
	done
	[ -f "$CONF" ] && [ -x "$PREFIX/libexec/pbs_init.d" ] && initd "$CONF" stop >>"$STATE_LOG" 2>&1
	return 0
}

down() {
	need_root
	[ -x "$PREFIX/libexec/pbs_init.d" ] && down_daemons
	teardown_network
	say "down"
}

status() {
	local rc=0
	daemons
	daemons | grep -q ' down$' && rc=1
	[ $rc -eq 0 ] && node_states
	[ $rc -eq 0 ] && ! healthy && rc=1
	if [ $rc -eq 0 ]; then echo "healthy"; else echo "not healthy"; fi
	return $rc
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
build) need_root; build ;;
*)
	echo "usage: $0 up|down|status" >&2
	exit 2
	;;
esac
