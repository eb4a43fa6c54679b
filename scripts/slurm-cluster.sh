#!/bin/bash
# slurm-cluster.sh up|down|status
#
# A real four-node Slurm cluster (n1..n4) on this one machine, for the
# integration tests and CI (see LOCAL-SLURM.md). It must run as root.
#
#   up      install slurm-wlm and munge when missing, start munged,
#           slurmctld and four slurmd, wait until the four nodes are idle.
#           Does nothing when the cluster is already up and healthy with
#           the configuration this script writes; restarts it when it runs
#           with another one (an older version of this script).
#   down    cancel the jobs, stop every daemon this script started (by the
#           pids in their pid files, never by name). Safe to run twice.
#   status  print the daemons' pids and sinfo; exit 0 only when healthy and
#           running with the configuration this script writes.
#
# Environment:
#   HTEX_SLURM_STATE   state directory (default /var/tmp/htex-slurm)
#   HTEX_SLURM_CONF    slurm.conf to write (default /etc/slurm/slurm.conf,
#                      where sbatch/squeue/sinfo look without SLURM_CONF).
#                      An existing file not written by this script is
#                      never overwritten.
#   HTEX_SLURM_TIMEOUT seconds to wait for the nodes (default 60)

set -u

STATE=${HTEX_SLURM_STATE:-/var/tmp/htex-slurm}
CONF=${HTEX_SLURM_CONF:-/etc/slurm/slurm.conf}
TIMEOUT=${HTEX_SLURM_TIMEOUT:-60}
NODES=(n1 n2 n3 n4)
CTLD_PORT=16817
FIRST_NODE_PORT=17001
MARKER="# written by htex scripts/slurm-cluster.sh"

if [ "$CONF" != /etc/slurm/slurm.conf ]; then
	export SLURM_CONF=$CONF
fi

say() { echo "slurm-cluster: $*"; }
die() {
	echo "slurm-cluster: error: $*" >&2
	exit 1
}

need_root() {
	[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts slurmctld, slurmd and munged)"
}

# alive PIDFILE NAME: the pid in PIDFILE runs a process whose command is NAME.
alive() {
	local pidfile=$1 name=$2 pid comm
	[ -s "$pidfile" ] || return 1
	# The daemon removes its pid file as it exits: the file may vanish here.
	pid=$(tr -dc '0-9' 2>/dev/null <"$pidfile")
	[ -n "$pid" ] || return 1
	comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
	[ "$comm" = "$name" ]
}

pidof_file() { tr -dc '0-9' 2>/dev/null <"$1"; }

# stop PIDFILE NAME: TERM, then KILL after 10 s, the process of PIDFILE.
stop() {
	local pidfile=$1 name=$2 pid i
	if alive "$pidfile" "$name"; then
		pid=$(pidof_file "$pidfile")
		say "stopping $name (pid $pid)"
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < 100; i++)); do
			alive "$pidfile" "$name" || break
			sleep 0.1
		done
		if alive "$pidfile" "$name"; then
			say "$name (pid $pid) ignored TERM; sending KILL"
			kill -KILL "$pid" 2>/dev/null
			sleep 0.2
		fi
	fi
	rm -f "$pidfile"
}

install_packages() {
	local missing=0 c
	for c in slurmctld slurmd sbatch squeue sacct scancel sinfo srun munged munge unmunge; do
		command -v "$c" >/dev/null 2>&1 || [ -x "/usr/sbin/$c" ] || missing=1
	done
	[ $missing -eq 0 ] && return 0
	say "installing slurm-wlm and munge with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -q slurm-wlm munge; then
		apt-get update -q || die "apt-get update failed"
		apt-get install -y -q slurm-wlm munge || die "apt-get install slurm-wlm munge failed"
	fi
}

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
	if munge_ok; then
		return 0
	fi
	say "starting munged"
	mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
	chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
	chmod 0755 /run/munge
	if [ ! -s /etc/munge/munge.key ]; then
		if command -v mungekey >/dev/null 2>&1; then
			mungekey --create --keyfile=/etc/munge/munge.key || die "mungekey failed"
		else
			dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null
		fi
	fi
	chown munge:munge /etc/munge/munge.key
	chmod 0400 /etc/munge/munge.key
	runuser -u munge -- /usr/sbin/munged || die "munged did not start; see /var/log/munge/munged.log"
	if [ -s /run/munge/munged.pid ]; then
		cp /run/munge/munged.pid "$STATE/munged.pid"
	fi
	local i
	for ((i = 0; i < 50; i++)); do
		munge_ok && return 0
		sleep 0.1
	done
	tail -n 20 /var/log/munge/munged.log >&2 2>/dev/null
	die "munge -n | unmunge fails after starting munged"
}

# render_conf writes the cluster's slurm.conf and cgroup.conf as
# "$CONF.new" and "<dir>/cgroup.conf.new" (none when task/cgroup is not
# used); install_conf puts them in place. up compares them with the files in
# place, so that a running cluster started with another configuration (an
# older version of this script) is restarted rather than kept.
render_conf() {
	local host=$1 last_port=$((FIRST_NODE_PORT + ${#NODES[@]} - 1))
	if [ -e "$CONF" ] && ! grep -qxF "$MARKER" "$CONF"; then
		die "$CONF exists and was not written by this script; move it away or set HTEX_SLURM_CONF"
	fi
	mkdir -p "$(dirname "$CONF")"
	cat >"$CONF.new" <<EOF
$MARKER
# A four-node test cluster on one host (LOCAL-SLURM.md). State: $STATE
ClusterName=htex
SlurmctldHost=$host
SlurmctldPort=$CTLD_PORT
SlurmdPort=$FIRST_NODE_PORT
AuthType=auth/munge
CryptoType=crypto/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE/ctld
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdSpoolDir=$STATE/spool/%n
SlurmdPidFile=$STATE/slurmd-%n.pid
SlurmdLogFile=$STATE/slurmd-%n.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
# Binding as on production clusters: task/affinity binds each task (the
# partition's CpuBind=threads is OLCF Frontier's default --cpu-bind) and
# task/cgroup, where it works, confines each step to its CPUs. A pool
# started without --cpu-bind=none sees one CPU.
TaskPlugin=$TASK_PLUGIN
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
InactiveLimit=0
KillWait=5
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=n[1-${#NODES[@]}] NodeHostname=$host NodeAddr=127.0.0.1 Port=$FIRST_NODE_PORT-$last_port CPUs=2 RealMemory=4096 State=UNKNOWN
PartitionName=debug Nodes=n[1-${#NODES[@]}] Default=YES OverSubscribe=FORCE CpuBind=threads MaxTime=INFINITE State=UP
EOF
	render_cgroup_conf
}

# conf_current: the files in place are those render_conf wrote.
conf_current() {
	local cg
	cg=$(dirname "$CONF")/cgroup.conf
	cmp -s "$CONF.new" "$CONF" || return 1
	if [ -e "$cg.new" ]; then
		cmp -s "$cg.new" "$cg"
	else
		[ ! -e "$cg" ]
	fi
}

install_conf() {
	local cg
	cg=$(dirname "$CONF")/cgroup.conf
	mv "$CONF.new" "$CONF"
	if [ -e "$cg.new" ]; then
		mv "$cg.new" "$cg"
	else
		rm -f "$cg"
	fi
}

# render_cgroup_conf writes cgroup.conf (as .new) next to slurm.conf (where Slurm reads
# it) when task/cgroup is used: each step is confined to the CPUs it was
# given (ConstrainCores), as on production clusters. A Slurm built for
# several slurmd per host keeps each node's cgroups apart under
# /slurm_<node>. Memory and devices are not constrained: four nodes share
# one host's memory, and there are no GPUs.
render_cgroup_conf() {
	local cg
	cg=$(dirname "$CONF")/cgroup.conf
	if [ -e "$cg" ] && ! grep -qxF "$MARKER" "$cg"; then
		die "$cg exists and was not written by this script; move it away"
	fi
	rm -f "$cg.new"
	if [ "$TASK_PLUGIN" = task/affinity ]; then
		return 0
	fi
	cat >"$cg.new" <<EOF
$MARKER
CgroupPlugin=cgroup/v1
ConstrainCores=yes
ConstrainRAMSpace=no
ConstrainDevices=no
EOF
}

# task_plugin: task/affinity binds tasks to CPUs (sched_setaffinity) and
# works anywhere. task/cgroup is added where this machine has a writable
# cgroup v1 cpuset hierarchy (as in this project's container). On a cgroup
# v2 host, Slurm 22.05's cgroup/v2 wants a hierarchy delegated by systemd to
# slurmd, which a test machine without systemd does not have: there the
# cluster binds with task/affinity alone, which is what shows a pool bound
# to one CPU.
task_plugin() {
	local probe=/sys/fs/cgroup/cpuset/htex-probe-$$
	if [ ! -f /sys/fs/cgroup/cgroup.controllers ] && mkdir "$probe" 2>/dev/null; then
		rmdir "$probe"
		echo task/affinity,task/cgroup
	else
		echo task/affinity
	fi
}

# node_states: one "name state" line per node, nothing when sinfo fails.
node_states() { timeout 10 sinfo -h -N -o '%N %T' 2>/dev/null; }

daemons_alive() {
	local n
	alive "$STATE/slurmctld.pid" slurmctld || return 1
	for n in "${NODES[@]}"; do
		alive "$STATE/slurmd-$n.pid" slurmd || return 1
	done
}

# dead_daemons: ", not running: <names>" for the daemons that died.
dead_daemons() {
	local n dead=()
	alive "$STATE/slurmctld.pid" slurmctld || dead+=(slurmctld)
	for n in "${NODES[@]}"; do
		alive "$STATE/slurmd-$n.pid" slurmd || dead+=("slurmd -N $n")
	done
	[ ${#dead[@]} -eq 0 ] || printf ', not running: %s' "$(IFS=,; echo "${dead[*]}")"
}

# healthy: every daemon runs and every node is usable (idle or running jobs).
healthy() {
	daemons_alive || return 1
	local good
	good=$(node_states | awk '$2 ~ /^(idle|mixed|allocated|completing)$/ {print $1}' | sort -u | wc -l)
	[ "$good" -eq ${#NODES[@]} ]
}

log_tail() {
	local f
	for f in "$STATE/slurmctld.log" "$STATE"/slurmd-*.log; do
		[ -f "$f" ] || continue
		echo "----- last lines of $f" >&2
		tail -n 10 "$f" >&2
	done
}

up() {
	need_root
	local host
	host=$(hostname -s)
	TASK_PLUGIN=$(task_plugin)
	render_conf "$host"
	if healthy; then
		if conf_current; then
			rm -f "$CONF.new" "$(dirname "$CONF")/cgroup.conf.new"
			say "already up: ${#NODES[@]} nodes"
			return 0
		fi
		say "up with another configuration: restarting"
	fi
	if [ -d "$STATE" ]; then
		down_daemons
	fi
	install_packages
	mkdir -p "$STATE/ctld" "$STATE/spool"
	local n
	for n in "${NODES[@]}"; do mkdir -p "$STATE/spool/$n"; done
	start_munge
	install_conf
	rm -f "$STATE"/*.log
	say "starting slurmctld on $host (port $CTLD_PORT)"
	slurmctld -c || {
		log_tail
		die "slurmctld did not start"
	}
	for n in "${NODES[@]}"; do
		slurmd -N "$n" || {
			log_tail
			die "slurmd -N $n did not start"
		}
	done
	say "waiting up to ${TIMEOUT}s for ${#NODES[@]} idle nodes"
	local deadline=$((SECONDS + TIMEOUT)) idle
	while :; do
		idle=$(node_states | awk '$2 == "idle" {print $1}' | sort -u | wc -l)
		if [ "$idle" -eq ${#NODES[@]} ] && daemons_alive; then
			break
		fi
		if [ $SECONDS -ge $deadline ]; then
			echo "slurm-cluster: sinfo says:" >&2
			node_states >&2
			log_tail
			die "not up after ${TIMEOUT}s: $idle of ${#NODES[@]} nodes idle$(dead_daemons) (logs in $STATE)"
		fi
		sleep 0.5
	done
	say "up: ${#NODES[@]} idle nodes in partition debug, $TASK_PLUGIN (state in $STATE, config $CONF)"
}

# down_daemons cancels jobs and stops slurmd's and slurmctld.
down_daemons() {
	local n i
	if alive "$STATE/slurmctld.pid" slurmctld; then
		local jobs
		jobs=$(timeout 10 squeue -h -o %i 2>/dev/null)
		if [ -n "$jobs" ]; then
			say "cancelling jobs: $(echo $jobs)"
			# shellcheck disable=SC2086
			timeout 10 scancel $jobs 2>/dev/null
			for ((i = 0; i < 50; i++)); do
				[ -z "$(timeout 10 squeue -h -t PD,R,CG,S,ST -o %i 2>/dev/null)" ] && break
				sleep 0.2
			done
		fi
	fi
	for n in "${NODES[@]}"; do
		stop "$STATE/slurmd-$n.pid" slurmd
	done
	stop "$STATE/slurmctld.pid" slurmctld
}

down() {
	need_root
	down_daemons
	stop "$STATE/munged.pid" munged
	say "down"
}

status() {
	local n rc=0
	if alive "$STATE/slurmctld.pid" slurmctld; then
		echo "slurmctld pid $(pidof_file "$STATE/slurmctld.pid")"
	else
		echo "slurmctld not running"
		rc=1
	fi
	for n in "${NODES[@]}"; do
		if alive "$STATE/slurmd-$n.pid" slurmd; then
			echo "slurmd $n pid $(pidof_file "$STATE/slurmd-$n.pid")"
		else
			echo "slurmd $n not running"
			rc=1
		fi
	done
	if [ $rc -eq 0 ]; then
		node_states
		healthy || rc=1
	fi
	if [ $rc -eq 0 ] && [ "$(id -u)" -eq 0 ]; then # render_conf writes next to $CONF
		TASK_PLUGIN=$(task_plugin)
		render_conf "$(hostname -s)"
		if ! conf_current; then
			echo "running with another configuration than this script writes (up restarts it)"
			rc=1
		fi
		rm -f "$CONF.new" "$(dirname "$CONF")/cgroup.conf.new"
	fi
	if [ $rc -eq 0 ]; then echo "healthy"; else echo "not healthy"; fi
	return $rc
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
*)
	echo "usage: $0 up|down|status" >&2
	exit 2
	;;
esac
