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
//   - srun: srun --ntasks=<nodes> --ntasks-per-node=1 --whole <options> /bin/bash <file>
//     (--whole gives each pool all the CPUs and memory the job holds on its
//     node: since Slurm 22.05 a step no longer inherits the batch job's
//     --cpus-per-task and would otherwise bind each pool to one CPU)
//   - mpiexec (MPICH, Cray PALS): mpiexec -n <nodes> --ppn 1
//     [--hostfile $PBS_NODEFILE when set] <options> /bin/bash <file>
//   - mpiexec-openmpi: mpiexec -n <nodes> --map-by ppr:1:node <options> /bin/bash <file>
//   - aprun: aprun -n <nodes> -N 1 <options> /bin/bash <file>
//   - pbsdsh (plain PBS Professional / OpenPBS): pbsdsh -n <i> <options> once
//     per distinct host of $PBS_NODEFILE (see pbsdsh.go)
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
	var run string
	switch kind {
	case "single":
		if nodes > 1 {
			return "", fmt.Errorf("launcher single starts one pool on the first node only, but nodes_per_block is %d: use srun (Slurm) or mpiexec (PBS), or simple if the command spreads itself", nodes)
		}
		return withNewline(workerCmd), nil
	case "simple":
		return withNewline(workerCmd), nil
	case "srun":
		run = fmt.Sprintf("srun --ntasks=%d --ntasks-per-node=1 --whole %s/bin/bash %s", nodes, opts, cmdFile)
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
	b.WriteString(withNewline(workerCmd))
	b.WriteString(heredocEnd + "\n")
	b.WriteString(run + "\n")
	return b.String(), nil
}

func withNewline(s string) string {
	if strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}
