// Command pbs-emulator stands in for a PBS Professional server, mom and
// client commands on one machine, for tests. Build it once and link it as
// qsub, qstat, qdel, qrls and mpiexec: it acts on the name it is called by.
// README.md says what is emulated and what is not.
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	os.Exit(run(os.Args))
}

func run(args []string) int {
	if len(args) > 1 && args[1] == jobSubcommand {
		return runJob(args[2:])
	}
	name := filepath.Base(args[0])
	switch name {
	case "qsub":
		return qsub(args[1:])
	case "qstat":
		return qstat(args[1:])
	case "qdel":
		return qdel(args[1:])
	case "qrls":
		return qrls(args[1:])
	case "mpiexec":
		return mpiexec(args[1:])
	}
	if len(args) > 1 { // pbs-emulator qsub ...
		return run(args[1:])
	}
	fmt.Fprintf(os.Stderr, "pbs-emulator: call me as qsub, qstat, qdel, qrls or mpiexec (got %q)\n", name)
	return 2
}
