package launcher

import "fmt"

// pbsdshRun is the text after the command file for kind "pbsdsh": one pool
// per node of a plain PBS Professional / OpenPBS job, through pbsdsh, the
// job's own task launcher (PBS's TM interface; no MPI needed).
//
// Facts it relies on (OpenPBS doc/man1/pbsdsh.1B, src/cmds/pbsdsh.c and
// src/resmom/start_exec.c, commit cd7ab5e; the same in the PBS Professional
// Reference Guide, "pbsdsh"):
//   - pbsdsh without -n runs one task per line of $PBS_NODEFILE, so a job
//     with mpiprocs > 1 would get several pools per node. -n <index> runs
//     the program once, on the vnode of that line (0-based). The text below
//     therefore runs one pbsdsh -n per distinct host of $PBS_NODEFILE, at
//     the index of its first line.
//   - The spawned task gets the job's environment (tm_spawn with envp
//     NULL), not the batch script's: what worker_init exported would be
//     lost. The batch script's exported variables are written to
//     worker.env beside the command file (mode 0600), and each node loads
//     them, keeping its own PBS_* variables (PBS_NODENUM, PBS_TASKNUM,
//     PBS_MOMPORT), TMPDIR, HOSTNAME, NCPUS and OMP_NUM_THREADS.
//   - The batch job's PATH is the one of PBS_HOME/pbs_environment, which
//     need not contain PBS's bin folder: pbsdsh is taken from PATH, else
//     from PBS_EXEC in PBS's own configuration file (PBS_CONF_FILE, else
//     /etc/pbs.conf).
//   - MPICH's hydra mpiexec, run by a task, reads the hosts from
//     $PBS_NODEFILE (which the pools get through worker.env; every node of
//     the job has the file: PBS_HOME/aux/<job id>) but starts its proxies
//     with ssh by default. PBS's own rsh replacement is pbs_tmrsh (OpenPBS
//     doc/man8/pbs_tmrsh.8B, src/cmds/pbs_tmrsh.c): it starts the command
//     as a task of the job on that host through TM, with tm_init reading
//     PBS_JOBID, PBS_JOBCOOKIE, PBS_NODENUM, PBS_TASKNUM and PBS_MOMPORT,
//     which every pool keeps (its own pbsdsh task's). Hydra's ssh launcher
//     adds -x, which pbs_tmrsh refuses; its rsh launcher adds nothing but
//     quotes the proxy's path for a remote shell ("/usr/bin/hydra_pmi_proxy"
//     with the quotes), which pbs_tmrsh, calling tm_spawn with argv as is,
//     cannot exec. So the text writes hydra-rsh beside the command file, a
//     wrapper that runs the words through /bin/sh -c as rsh does, and
//     exports HYDRA_LAUNCHER=rsh and HYDRA_LAUNCHER_EXEC=<hydra-rsh> (MPICH
//     wiki "Using the Hydra Process Manager", Environment Settings; both
//     names in mpiexec.hydra 4.0.2), unless worker_init set a hydra launcher.
//
// Each pool is told its node's name (HTEX_NODE_NAME, the host name as
// $PBS_NODEFILE gives it), so that several moms on one host still count as
// distinct nodes. The text's status is the first non-zero status of the
// pbsdsh runs; it warns on stderr when the job has not the expected number
// of distinct hosts (e.g. place=pack put two chunks on one node).
func pbsdshRun(nodes int, opts string) string {
	return fmt.Sprintf(`htex_pbsdsh=$(command -v pbsdsh || sed -n 's|^PBS_EXEC=\(.*\)|\1/bin/pbsdsh|p' "${PBS_CONF_FILE:-/etc/pbs.conf}" 2>/dev/null)
# MPICH's mpiexec (hydra) in a task starts its ranks' proxies with ssh, which
# a PBS job need not have: unless worker_init chose a hydra launcher, it uses
# rsh with this wrapper around PBS's pbs_tmrsh, which starts them as tasks of
# the job (TM) on their node. Like rsh, the wrapper runs the command words
# through a shell (hydra quotes the proxy's path for one).
htex_tmrsh=${htex_pbsdsh%%/*}/pbs_tmrsh
if [ -n "$htex_pbsdsh" ] && [ -x "$htex_tmrsh" ] && [ -z "${HYDRA_LAUNCHER:-}${HYDRA_BOOTSTRAP:-}${HYDRA_LAUNCHER_EXEC:-}${HYDRA_BOOTSTRAP_EXEC:-}" ]; then
	printf '#!/bin/sh\n# rsh for MPICH hydra in a PBS job (htex): the command on host $1 as a task of the job\nh=$1; shift\nexec %%q "$h" /bin/sh -c "$*"\n' "$htex_tmrsh" > "${HTEX_BLOCK_DIR:-$PWD}/hydra-rsh" &&
		chmod 755 "${HTEX_BLOCK_DIR:-$PWD}/hydra-rsh" &&
		export HYDRA_LAUNCHER=rsh HYDRA_LAUNCHER_EXEC="${HTEX_BLOCK_DIR:-$PWD}/hydra-rsh"
fi
# pbsdsh gives its tasks the job's environment only: the batch script's
# exported variables (worker_init's included) go into worker.env, which each
# node loads before the command file; each node keeps its own PBS_* values.
(umask 077 && export -p > "${HTEX_BLOCK_DIR:-$PWD}/worker.env")
htex_line=0 htex_hosts=" " htex_pids="" htex_status=127
if [ -z "$htex_pbsdsh" ]; then
	echo "htex: pbsdsh is neither on PATH nor under PBS_EXEC in ${PBS_CONF_FILE:-/etc/pbs.conf}" >&2
else
	while read -r htex_host; do
		case "$htex_hosts" in
		*" $htex_host "*) ;;
		*)
			htex_hosts="$htex_hosts$htex_host "
			"$htex_pbsdsh" -n "$htex_line" %s-- /bin/bash -c 'own=$(export -p | grep -E "^declare -x (PBS_[A-Za-z0-9_]*|TMPDIR|HOSTNAME|NCPUS|OMP_NUM_THREADS)=")
. "$2/worker.env"; eval "$own"; export HTEX_NODE_NAME="$1"
cd "$2" && exec /bin/bash "$2/worker.sh"' htex-pbsdsh "$htex_host" "${HTEX_BLOCK_DIR:-$PWD}" &
			htex_pids="$htex_pids $!"
			;;
		esac
		htex_line=$((htex_line + 1))
	done < "${PBS_NODEFILE:?pbsdsh needs a PBS job: PBS_NODEFILE is not set}"
	htex_started=$(echo $htex_pids | wc -w)
	[ "$htex_started" -eq %d ] || echo "htex: pbsdsh started $htex_started pools, one per distinct host of $PBS_NODEFILE, but the block has %d nodes" >&2
	htex_status=0
	for htex_pid in $htex_pids; do
		wait "$htex_pid"
		htex_rc=$?
		[ "$htex_status" -ne 0 ] || htex_status=$htex_rc
	done
fi
(exit "$htex_status")`, opts, nodes, nodes)
}
