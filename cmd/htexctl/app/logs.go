package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/htex/htex/client"
	"github.com/htex/htex/wire"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "print a task's stdout and stderr: the files of --stdout/--stderr, else the kept tails",
		ArgsUsage: "JOB [TASK]",
		Description: "With TASK: its stdout goes to stdout and its stderr to stderr, byte for byte (the\n" +
			"files named by submit --stdout/--stderr, read from this host, else the last bytes the\n" +
			"pool kept). Without TASK: every finished task of the job, each under a header.\n" +
			"--failed: every failed task of the job with the first --lines lines of each stream.\n" +
			"--follow: print a running task's --stdout/--stderr files as they grow, until it ends.",
		Flags: []cli.Flag{
			runDirFlag,
			&cli.BoolFlag{Name: "failed", Usage: "every task of the job that did not succeed, with its first lines"},
			&cli.IntFlag{Name: "lines", Value: 5, Usage: "with --failed: lines of each stream to show"},
			&cli.StringFlag{Name: "stream", Value: "both", Usage: "stdout, stderr or both"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "with TASK: follow its output files until it ends (needs --stdout/--stderr at submit)"},
		},
		Action: runLogs,
	}
}

func runLogs(c *cli.Context) error {
	if c.NArg() < 1 || c.NArg() > 2 {
		return usageError("logs: want JOB [TASK]")
	}
	jobID, err := client.ParseJobID(c.Args().Get(0))
	if err != nil {
		return usageError("logs: %v", err)
	}
	var taskID uint64
	if c.NArg() == 2 {
		if taskID, err = strconv.ParseUint(c.Args().Get(1), 10, 64); err != nil || taskID == 0 {
			return usageError("logs: task id %q: want a positive integer", c.Args().Get(1))
		}
	}
	streams, err := logStreams(c.String("stream"))
	if err != nil {
		return err
	}
	switch {
	case c.Bool("failed") && taskID != 0:
		return usageError("logs: --failed lists a job's failed tasks; give no TASK with it")
	case c.Bool("follow") && taskID == 0:
		return usageError("logs: --follow needs a TASK")
	case c.Int("lines") < 1:
		return usageError("logs: --lines %d: want at least 1", c.Int("lines"))
	}
	cl, err := dial(c)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx := context.Background()
	if taskID != 0 {
		r, err := findTask(ctx, cl, jobID, taskID)
		if err != nil {
			return err
		}
		if c.Bool("follow") {
			return followTask(ctx, cl, r, streams)
		}
		return printTask(r, streams)
	}
	return eachTask(ctx, cl, jobID, func(r *wire.TaskResult) error {
		if c.Bool("failed") {
			if r.State == "succeeded" || unfinished(r) {
				return nil
			}
			return printFirstLines(r, streams, c.Int("lines"))
		}
		if unfinished(r) {
			return nil
		}
		return printWithHeaders(r, streams)
	})
}

func logStreams(v string) ([2]bool, error) {
	switch v {
	case "both":
		return [2]bool{true, true}, nil
	case "stdout":
		return [2]bool{true, false}, nil
	case "stderr":
		return [2]bool{false, true}, nil
	}
	return [2]bool{}, usageError("logs: --stream %q: want stdout, stderr or both", v)
}

func unfinished(r *wire.TaskResult) bool { return r.State == "queued" || r.State == "running" }

func findTask(ctx context.Context, cl *client.Client, jobID, taskID uint64) (*wire.TaskResult, error) {
	page, _, err := cl.ResultsPage(ctx, jobID, taskID-1, 1)
	if err != nil {
		return nil, clientError(fmt.Errorf("logs: %w", err))
	}
	if len(page) == 0 || page[0].TaskId != taskID {
		return nil, failure("logs: job %d has no task %d (`htexctl results %d` lists its tasks)", jobID, taskID, jobID)
	}
	return page[0], nil
}

func eachTask(ctx context.Context, cl *client.Client, jobID uint64, fn func(*wire.TaskResult) error) error {
	err := cl.Results(ctx, jobID, fn)
	var ec cli.ExitCoder
	if err != nil && !errors.As(err, &ec) {
		return clientError(fmt.Errorf("logs: %w", err))
	}
	return err
}

// taskOutput is a stream of a finished task: its file when it had one,
// else the tail the pool kept.
func taskOutput(r *wire.TaskResult, stream int) ([]byte, error) {
	path, tail := r.StdoutPath, r.Stdout
	if stream == 1 {
		path, tail = r.StderrPath, r.Stderr
	}
	if path == "" {
		return tail, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("task %d: its %s file %s (written on node %s): %w", r.TaskId, streamName[stream], path, dash(r.Node), err)
	}
	return b, nil
}

var streamName = [2]string{"stdout", "stderr"}

// printTask writes one task's streams byte for byte: stdout to stdout,
// stderr to stderr.
func printTask(r *wire.TaskResult, streams [2]bool) error {
	if unfinished(r) {
		return failure("logs: task %d is %s: its output comes with its result (or use --follow with --stdout/--stderr files)", r.TaskId, r.State)
	}
	dst := [2]io.Writer{out, os.Stderr}
	for i := range 2 {
		if !streams[i] {
			continue
		}
		b, err := taskOutput(r, i)
		if err != nil {
			return failure("logs: %v", err)
		}
		if _, err := dst[i].Write(b); err != nil {
			return failure("logs: %v", err)
		}
	}
	return nil
}

func printWithHeaders(r *wire.TaskResult, streams [2]bool) error {
	for i := range 2 {
		if !streams[i] {
			continue
		}
		b, err := taskOutput(r, i)
		if err != nil {
			fmt.Fprintf(out, "==> task %d %s: %v <==\n", r.TaskId, streamName[i], err)
			continue
		}
		fmt.Fprintf(out, "==> task %d %s (%s) <==\n", r.TaskId, streamName[i], r.State)
		out.Write(b)
		if len(b) > 0 && b[len(b)-1] != '\n' {
			fmt.Fprintln(out)
		}
	}
	return nil
}

func printFirstLines(r *wire.TaskResult, streams [2]bool, n int) error {
	kind := r.ErrorKind
	if kind == "exit" {
		kind = fmt.Sprintf("exit %d", r.ExitCode)
	}
	fmt.Fprintf(out, "task %d (%s, %s, node %s)", r.TaskId, r.State, kind, dash(r.Node))
	if r.Error != "" {
		fmt.Fprintf(out, ": %s", r.Error)
	}
	fmt.Fprintln(out)
	for i := range 2 {
		if !streams[i] {
			continue
		}
		b, err := taskOutput(r, i)
		if err != nil {
			fmt.Fprintf(out, "  %s: %v\n", streamName[i], err)
			continue
		}
		lines := strings.SplitAfter(string(b), "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		for k, l := range lines {
			if k == n {
				fmt.Fprintf(out, "  %s: ... (%d more lines)\n", streamName[i], len(lines)-n)
				break
			}
			fmt.Fprintf(out, "  %s: %s", streamName[i], strings.TrimSuffix(l, "\n")+"\n")
		}
	}
	return nil
}

// followTask prints a task's output files as they grow, until the task has
// a result; then what was written after the last read.
func followTask(ctx context.Context, cl *client.Client, r *wire.TaskResult, streams [2]bool) error {
	paths := [2]string{r.StdoutPath, r.StderrPath}
	if (!streams[0] || paths[0] == "") && (!streams[1] || paths[1] == "") {
		return failure("logs: --follow reads the task's --stdout/--stderr files, and task %d has none: its kept output comes with its result (`htexctl logs %d %d` once it is done)", r.TaskId, r.JobId, r.TaskId)
	}
	dst := [2]io.Writer{out, os.Stderr}
	var off [2]int64
	copyNew := func() error {
		for i := range 2 {
			if !streams[i] || paths[i] == "" {
				continue
			}
			f, err := os.Open(paths[i])
			if errors.Is(err, os.ErrNotExist) {
				continue // not started yet
			}
			if err != nil {
				return failure("logs: %v", err)
			}
			n, err := io.Copy(dst[i], io.NewSectionReader(f, off[i], 1<<62))
			f.Close()
			off[i] += n
			if err != nil {
				return failure("logs: %v", err)
			}
		}
		return nil
	}
	for {
		if err := copyNew(); err != nil {
			return err
		}
		if !unfinished(r) {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
		nr, err := findTask(ctx, cl, r.JobId, r.TaskId)
		if err != nil {
			return err
		}
		r = nr
	}
}
