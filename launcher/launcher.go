// Package launcher turns the command that starts one worker pool into the
// lines of a batch script that start one pool per node of a block (srun,
// mpiexec, aprun, ...). It is pure: it builds text and runs nothing.
//
// Multi-node launchers never put the worker command on their own command
// line. They write it into a command file with a quoted heredoc, so that
// "$VAR" in the command expands on each node when the file runs, not once on
// the head node when the script is written (Parsl's launchers use an unquoted
// heredoc, sharp edge 21), and they run "/bin/bash <file>" once per node.
package launcher

import (
	"fmt"
	"strings"
)

// Kinds lists the launcher names Line accepts.
var Kinds = []string{"single", "srun", "mpiexec", "mpiexec-openmpi", "aprun", "pbsdsh", "simple"}

// heredocEnd ends the heredoc that writes the command file.
const heredocEnd = "HTEX_WORKER_COMMAND_EOF"

// cmdFile is where the command file goes: the block's folder (exported by
// the batch script as HTEX_BLOCK_DIR, on a filesystem every node sees), else
// the script's working directory.
const cmdFile = `"${HTEX_BLOCK_DIR:-$PWD}/worker.sh"`

// Line returns the script text that starts workerCmd once per node of a
// block of the given number of nodes, with options (shell words, verbatim)
// passed to the launcher program. kind is one of Kinds:
//
//   - single: the command, on the batch script's own node; a block of more
//     than one node is an error (the other nodes would sit idle).
//   - simple: the command as is, whatever the node count (for commands that
//     spread themselves, such as a wrapper or an MPI-aware pool).
//   - srun: srun --ntasks=<nodes> --ntasks-per-node=1 --whole --overlap
//     --cpu-bind=none <options> /bin/bash <file>, where the file first sets
//     up the environment for the steps the tasks start (see srunPrologue).
//     Every option is there to give each pool its whole node on any Slurm
//     configuration (srun(1), Slurm 22.05, and the OLCF Frontier User Guide):
//     --cpu-bind=none, because with the task/affinity plugin srun otherwise
//     binds each task to its cpus-per-task (1 by default) CPUs: Frontier's
//     default is --cpu-bind=threads, which binds the pool to one hardware
//     thread; with none the pool keeps the CPUs of its step, which by default
//     are all the CPUs the job holds on the node (see --exact: "By default,
//     all non-GRES resources on each node in the step allocation will be
//     used"), and task/cgroup confines it to those. --whole says the same
//     explicitly (the default since Slurm 20.11.3, whose NEWS deprecates the
//     option but every release still accepts it). No -c: a count that is not
//     the node's would shrink the step (-c implies --exact), and the job's
//     --cpus-per-task already reaches srun where Slurm passes it on.
//     --overlap lets the steps that tasks start with srun (every wrapper of
//     an MPI code does) share the node with the pool's step, which would
//     otherwise hold every CPU and make them wait until their time limit:
//     "A step using this option will overlap all other steps, even those
//     that did not specify --overlap". GPUs need no option: "a job step is
//     allocated all of the generic resources that have been requested by the
//     job" (srun(1), --gres), so the batch script asks for them.
//   - mpiexec (MPICH, Cray PALS): mpiexec -n <nodes> --ppn 1
//     [--hostfile $PBS_NODEFILE when set] <options> /bin/bash <file>
//   - mpiexec-openmpi: mpiexec -n <nodes> --map-by ppr:1:node <options> /bin/bash <file>
//   - aprun: aprun -n <nodes> -N 1 <options> /bin/bash <file>
//   - pbsdsh (plain PBS Professional / OpenPBS): pbsdsh -n <i> <options> once
//     per distinct host of $PBS_NODEFILE (see pbsdsh.go)
//
// The command file of srun, mpiexec and pbsdsh exports HTEX_MPI_LAUNCHER
// (MPIKind), which the pool reads: its node can start the ranks of
// multi-node tasks.
func Line(kind string, workerCmd string, nodes int, options string) (string, error) {
	if strings.TrimSpace(workerCmd) == "" {
		return "", fmt.Errorf("launcher %s: empty worker command", kind)
	}
	if nodes < 1 {
		return "", fmt.Errorf("launcher %s: nodes %d: must be >= 1", kind, nodes)
	}
	if strings.ContainsAny(options, "\n\r") {
		return "", fmt.Errorf("launcher_options %q: must be one line", options)
	}
	opts := ""
	if o := strings.TrimSpace(options); o != "" {
		opts = o + " "
	}
	var run, prologue string
	switch kind {
	case "single":
		if nodes > 1 {
			return "", fmt.Errorf("launcher single starts one pool on the first node only, but nodes_per_block is %d: use srun (Slurm) or mpiexec (PBS), or simple if the command spreads itself", nodes)
		}
		return withNewline(workerCmd), nil
	case "simple":
		return withNewline(workerCmd), nil
	case "srun":
		run = fmt.Sprintf("srun --ntasks=%d --ntasks-per-node=1 --whole --overlap --cpu-bind=none %s/bin/bash %s", nodes, opts, cmdFile)
		prologue = srunPrologue
	case "mpiexec":
		run = fmt.Sprintf(`mpiexec -n %d --ppn 1 ${PBS_NODEFILE:+--hostfile "$PBS_NODEFILE"} %s/bin/bash %s`, nodes, opts, cmdFile)
	case "mpiexec-openmpi":
		run = fmt.Sprintf("mpiexec -n %d --map-by ppr:1:node %s/bin/bash %s", nodes, opts, cmdFile)
	case "aprun":
		run = fmt.Sprintf("aprun -n %d -N 1 %s/bin/bash %s", nodes, opts, cmdFile)
	case "pbsdsh":
		run = pbsdshRun(nodes, opts)
	default:
		return "", fmt.Errorf("unknown launcher %q: want %s", kind, strings.Join(Kinds, ", "))
	}
	for _, l := range strings.Split(workerCmd, "\n") {
		if strings.TrimRight(l, "\r") == heredocEnd {
			return "", fmt.Errorf("launcher %s: the worker command contains the line %q, which ends the heredoc", kind, heredocEnd)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# The worker command goes into a file (quoted heredoc: $ expands on each node),\n")
	fmt.Fprintf(&b, "# then %s runs it once per node.\n", kind)
	fmt.Fprintf(&b, "cat > %s <<'%s'\n", cmdFile, heredocEnd)
	b.WriteString(prologue)
	if mpi, _ := MPIKind(kind); mpi != "" {
		// The pool tells the interchange how its node starts the ranks of
		// a multi-node task (htexctl worker --mpi-launcher, mpi.go).
		b.WriteString("export HTEX_MPI_LAUNCHER=" + mpi + "\n")
	}
	b.WriteString(withNewline(workerCmd))
	b.WriteString(heredocEnd + "\n")
	b.WriteString(run + "\n")
	return b.String(), nil
}

// srunPrologue starts the command file of the srun launcher; it runs in the
// pool's step, before the pool, and shapes what the tasks inherit:
//   - SLURM_OVERLAP=1 (srun(1): "Same as --overlap") makes every step a task
//     starts overlap the others: two tasks of one node that each run
//     "srun -n 1 ..." would otherwise wait for each other ("step creation
//     temporarily disabled"), since a step takes all the CPUs of its nodes
//     unless it says --exact. htex's slots, not Slurm's steps, share the node.
//   - The variables that srun sets in the pool's step and reads back as
//     options of a later srun are removed, so that a task's srun behaves
//     as from the batch script (Slurm 22.05 measured: the step adds
//     SLURM_CPU_BIND* and SLURM_DISTRIBUTION to the batch job's variables):
//     SLURM_CPU_BIND is --cpu-bind, so a task's ranks would run unbound
//     instead of with the site's default binding, and SLURM_DISTRIBUTION
//     (cyclic for one task per node) is -m, which would deal a task's ranks
//     round-robin over the nodes instead of in blocks.
const srunPrologue = `# Steps started by tasks (srun inside a task) share the node with this pool
# and with each other, and bind and place their tasks as from the batch script.
export SLURM_OVERLAP=1
unset SLURM_CPU_BIND SLURM_CPU_BIND_TYPE SLURM_CPU_BIND_LIST SLURM_CPU_BIND_VERBOSE SLURM_DISTRIBUTION
`

func withNewline(s string) string {
	if strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}
