package launcher

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/htex/htex/wire"
)

// Multi-node (MPI) tasks. A task submitted with --nodes N runs on the first
// of N pools of one block; its command starts its ranks on all N nodes
// with the prefix built here ($HTEX_MPI_PREFIX), using the program that
// started the pools themselves, so that the ranks land inside the block's
// allocation.

// MPI launchers a pool can use to start the ranks of a multi-node task.
const (
	// MPISrun starts ranks with Slurm's srun, as a step of the block's job.
	MPISrun = "srun"
	// MPIMpiexec starts ranks with an MPICH-style mpiexec: HPE Cray PALS
	// (Polaris, Aurora) or MPICH's hydra (plain PBS through pbs_tmrsh, see
	// pbsdsh.go).
	MPIMpiexec = "mpiexec"
)

// MPIKind returns the MPI launcher of the pools that a block launcher
// (provider.launcher) starts, or "" and the reason why its pools cannot
// start the ranks of a multi-node task on nodes of their choosing.
func MPIKind(blockLauncher string) (kind, why string) {
	switch blockLauncher {
	case "srun":
		return MPISrun, ""
	case "mpiexec":
		return MPIMpiexec, ""
	case "pbsdsh":
		// The pools of a pbsdsh block export HYDRA_LAUNCHER(_EXEC) so that
		// MPICH's mpiexec starts its proxies through PBS's TM (pbsdsh.go).
		return MPIMpiexec, ""
	case "single":
		return "", "launcher single starts one pool, on the batch script's node only"
	case "simple":
		return "", "launcher simple leaves starting the pools to the command, so htex does not know how to start ranks on chosen nodes"
	case "aprun":
		return "", "launcher aprun places ranks by ALPS node ids, which the pools do not learn"
	case "mpiexec-openmpi":
		return "", "launcher mpiexec-openmpi: Open MPI's host syntax is not supported for multi-node tasks yet"
	}
	return "", fmt.Sprintf("unknown launcher %q", blockLauncher)
}

// MaxRanks bounds nodes × ranks per node of one multi-node task.
const MaxRanks = wire.MaxRanks

// Prefix returns the command words that start ranksPerNode ranks on each
// of nodes (the first node first) with the MPI launcher kind; a task's
// command is the prefix followed by its program. Node names must be plain
// host names: the prefix is split into words by the shell, unquoted.
//
//   - srun: srun -N <n> -n <n*r> --ntasks-per-node <r> --nodelist <n1,n2,...> --overlap.
//     srun(1) of Slurm 22.05.8 (Debian 12's slurm-client; online at
//     https://slurm.schedmd.com/archive/slurm-22.05.8/srun.html): -N/--nodes
//     "Request that a minimum of minnodes nodes be allocated" (one number is
//     both minimum and maximum); -n/--ntasks the number of ranks;
//     --ntasks-per-node "Request that ntasks be invoked on each node" (with
//     -n it is a maximum, so -n is exactly n*r); -w/--nodelist "Request a
//     specific list of hosts", a comma-separated list; --overlap "allows
//     steps to share all resources (CPUs, memory, and GRES) with all other
//     steps": the pools' own steps hold every CPU of their nodes (they were
//     started with srun --overlap, and their command file exports
//     SLURM_OVERLAP=1 and unsets the SLURM_CPU_BIND* and SLURM_DISTRIBUTION
//     variables of their step, see srunPrologue), and without it the ranks'
//     step would wait for them. The pool's step (one task per node) leaves
//     SLURM_NNODES, SLURM_NTASKS and SLURM_NTASKS_PER_NODE in the task's
//     environment, which srun reads as -N, -n and --ntasks-per-node (INPUT
//     ENVIRONMENT VARIABLES); the explicit options win: "Command line
//     options always override environment variable settings".
//   - mpiexec: mpiexec -n <n*r> --ppn <r> --hosts <n1,n2,...>.
//     HPE Cray PALS, as ALCF documents it for Polaris ("Running Jobs on
//     Polaris", https://docs.alcf.anl.gov/polaris/running-jobs/, section
//     "Running MPI+OpenMP Applications": "-n total number of MPI ranks",
//     "-ppn number of MPI ranks per node", and "--hostfile ... the default
//     is --hostfile $PBS_NODEFILE", which --hosts narrows to the task's
//     nodes), and MPICH's hydra (mpiexec -help of hydra 4.0.2, Debian 12:
//     "-hosts {host list} comma separated host list", "-ppn processes per
//     node"; it accepts each option with one dash or two, checked here).
//     Parsl's MPI mode composes the same command for both
//     (parsl/executors/high_throughput/mpi_prefix_composer.py:
//     mpiexec -n <ranks> -ppn <r> -hosts <nodes>).
func Prefix(kind string, nodes []string, ranksPerNode int) (string, error) {
	if len(nodes) == 0 {
		return "", fmt.Errorf("MPI prefix: no nodes")
	}
	if ranksPerNode < 1 {
		return "", fmt.Errorf("MPI prefix: ranks per node %d: must be >= 1", ranksPerNode)
	}
	if len(nodes)*ranksPerNode > MaxRanks {
		return "", fmt.Errorf("MPI prefix: %d nodes × %d ranks per node exceeds %d ranks", len(nodes), ranksPerNode, MaxRanks)
	}
	seen := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		if !plainHost(n) {
			return "", fmt.Errorf("MPI prefix: node name %q: want a plain host name (letters, digits, '.', '_', '-')", n)
		}
		if seen[n] {
			return "", fmt.Errorf("MPI prefix: node %q given twice", n)
		}
		seen[n] = true
	}
	list := strings.Join(nodes, ",")
	n, r := strconv.Itoa(len(nodes)), strconv.Itoa(ranksPerNode)
	total := strconv.Itoa(len(nodes) * ranksPerNode)
	switch kind {
	case MPISrun:
		return "srun -N " + n + " -n " + total + " --ntasks-per-node " + r + " --nodelist " + list + " --overlap", nil
	case MPIMpiexec:
		return "mpiexec -n " + total + " --ppn " + r + " --hosts " + list, nil
	case "":
		return "", fmt.Errorf("MPI prefix: this pool has no MPI launcher (its block's launcher cannot start ranks on chosen nodes)")
	}
	return "", fmt.Errorf("MPI prefix: unknown MPI launcher %q: want %s or %s", kind, MPISrun, MPIMpiexec)
}

// plainHost reports whether s is a non-empty host name of letters,
// digits, '.', '_' and '-' that does not start with '-'.
func plainHost(s string) bool {
	if s == "" || s[0] == '-' || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
