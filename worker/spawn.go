package worker

import (
	"fmt"
	"os"
)

// emptyInput is what tasks read as standard input: /dev/null, or where a
// node image or container has no /dev, the read end of a pipe whose write
// end is closed, which reads as end of file just the same.
func emptyInput() (*os.File, error) {
	if f, err := os.Open(os.DevNull); err == nil {
		return f, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("standard input for tasks: neither %s nor a pipe: %w", os.DevNull, err)
	}
	w.Close()
	return r, nil
}

// spawnError explains a failed fork/exec. execve and chdir both say "no
// such file or directory"; when the task's working directory is what is
// missing (the submit directory is not on this node's file systems), say
// that instead of blaming the program.
func spawnError(argv0, cwd string, err error) error {
	if cwd != "" {
		if _, serr := os.Stat(cwd); serr != nil {
			return fmt.Errorf("working directory %s: %w (submit with --cwd a directory the compute nodes have)", cwd, serr)
		}
	}
	return fmt.Errorf("start %s: %w", argv0, err)
}
