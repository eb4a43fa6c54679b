// Package app builds the htexctl command line: one file per verb group.
// It parses flags and prints; the work is done by the packages it calls.
package app

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/urfave/cli/v2"
)

// Exit codes: 0 ok, 1 a task or operation failed, 2 usage or configuration error.
const (
	ExitFailed = 1
	ExitUsage  = 2
)

// usageError makes the command exit 2 with a one-line message.
func usageError(format string, args ...any) error {
	return cli.Exit("htexctl: "+fmt.Sprintf(format, args...), ExitUsage)
}

// failure makes the command exit 1 with a one-line message.
func failure(format string, args ...any) error {
	return cli.Exit("htexctl: "+fmt.Sprintf(format, args...), ExitFailed)
}

// New builds the CLI application.
func New() *cli.App {
	return &cli.App{
		Name:  "htexctl",
		Usage: "run many tasks on Slurm and PBS clusters through pilot jobs",
		Description: "htexctl serve starts a daemon for a run directory; submit, wait, results,\n" +
			"status, cancel and stop talk to it. plan and render show the pinning and the\n" +
			"batch script before anything is submitted.",
		HideHelpCommand: true,
		// `htexctl completion SHELL` prints the scripts that use it.
		EnableBashCompletion: true,
		Commands:             commands(),
		// --env 'X=a,b' is one variable: values are never split at commas.
		DisableSliceFlagSeparator: true,
		// Errors come back from Run to Main, which prints them and returns
		// the exit status: no os.Exit here, so deferred cleanup (the
		// daemon's, a CPU profile's) always runs.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

// Main runs the CLI and returns the exit status. With HTEX_CPUPROFILE=PREFIX
// set, each htexctl process (daemon, pool, client) writes a CPU profile to
// PREFIX.<verb>.<pid> for `go tool pprof`; with HTEX_MEMPROFILE=PREFIX, a
// heap profile (what it allocated, where, over its life: `go tool pprof
// -sample_index=alloc_space`) when it exits. Developer aids for
// performance work.
func Main(args []string) int {
	if prefix := os.Getenv("HTEX_CPUPROFILE"); prefix != "" && len(args) > 1 {
		if f, err := os.Create(fmt.Sprintf("%s.%s.%d", prefix, args[1], os.Getpid())); err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	if prefix := os.Getenv("HTEX_MEMPROFILE"); prefix != "" && len(args) > 1 {
		defer func() {
			if f, err := os.Create(fmt.Sprintf("%s.%s.%d", prefix, args[1], os.Getpid())); err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	a := New()
	return exitStatus(a.Run(reorderArgs(a.Commands, args)))
}

// exitStatus prints err (if any) and returns the process's exit status.
func exitStatus(err error) int {
	if err == nil {
		return 0
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := ec.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, msg)
		}
		return ec.ExitCode()
	}
	fmt.Fprintln(os.Stderr, "htexctl:", err)
	return ExitUsage
}
