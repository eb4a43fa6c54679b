package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"google.golang.org/protobuf/proto"

	"github.com/htex/htex/client"
	"github.com/htex/htex/wire"
)

var out io.Writer = os.Stdout

func dial(c *cli.Context) (*client.Client, error) {
	dir, err := resolveRunDir(c, "htex")
	if err != nil {
		return nil, usageError("%v", err)
	}
	cl, err := client.Dial(dir)
	if err != nil {
		return nil, usageError("%v", err)
	}
	return cl, nil
}

// clientError maps a client error to an exit: no daemon, or a daemon that
// rejects this client's keys, is a usage error (2).
func clientError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, client.ErrNoDaemon) || errors.Is(err, client.ErrSecurity) {
		return usageError("%v", err)
	}
	return failure("%v", err)
}

func submitCommand() *cli.Command {
	return &cli.Command{
		Name:      "submit",
		Usage:     "submit tasks as one job and print its id",
		ArgsUsage: "[-- CMD ARGS...]",
		Description: "One command:          htexctl submit -- ./simulate --seed 1\n" +
			"An array (ids A..B):  htexctl submit --array 1-100 -- ./simulate --seed {}\n" +
			"Lines of a file:      htexctl submit --file cmds.txt   (each line runs through sh -c; - = stdin)\n" +
			"The call returns once every task is durable in the daemon's journal.\n" +
			"Tasks see HTEX_TASK_ID, HTEX_JOB_ID, HTEX_ARRAY_INDEX, HTEX_WORKER_RANK and their pinning.",
		Flags: []cli.Flag{
			runDirFlag,
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "read one command per line from `FILE` (- = stdin); blank lines and # comments are skipped"},
			&cli.StringFlag{Name: "array", Usage: "run the command once per index `A-B`, with {} replaced by the index"},
			&cli.BoolFlag{Name: "shell", Usage: "run CMD ARGS joined through sh -c"},
			&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set `K=V` in the tasks' environment (repeatable)"},
			&cli.StringFlag{Name: "cwd", Usage: "working directory of the tasks (default: the current directory)"},
			&cli.DurationFlag{Name: "timeout", Aliases: []string{"time-limit"}, Usage: "the task's time limit: its process group is killed after this `DURATION` (e.g. 90s, 2h); " +
				"a pool takes the task only when the limit fits the time left to its block"},
			&cli.IntFlag{Name: "retries", Value: -1, Usage: "times a task is run again when its pool is lost (default: the executor's, 2)"},
			&cli.IntFlag{Name: "priority", Usage: "higher runs first"},
			&cli.StringFlag{Name: "name", Usage: "job name shown by status"},
			&cli.StringFlag{Name: "stdout", Usage: "write each task's full stdout to `PATH` ({} = array index or line number)"},
			&cli.StringFlag{Name: "stderr", Usage: "write each task's full stderr to `PATH` ({} = array index or line number)"},
			&cli.BoolFlag{Name: "wait", Aliases: []string{"w"}, Usage: "wait for the job like `htexctl wait`"},
			&cli.BoolFlag{Name: "noop", Hidden: true, Usage: "pools answer without running anything (benchmarks)"},
		},
		Action: func(c *cli.Context) error {
			specs, err := buildSpecs(c)
			if err != nil {
				return usageError("submit: %v", err)
			}
			cl, err := dial(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := fitsWalltime(cl, c.Duration("timeout")); err != nil {
				return usageError("submit: %v", err)
			}
			cl.Timeout = 60 * time.Second
			ctx := context.Background()
			jobID, err := cl.Submit(ctx, c.String("name"), specs)
			if err != nil {
				return clientError(fmt.Errorf("submit: %w", err))
			}
			fmt.Fprintln(out, jobID)
			if c.Bool("wait") {
				return waitJob(ctx, cl, jobID, false)
			}
			return nil
		},
	}
}

// fitsWalltime refuses a time limit that no block could ever run: a pool
// takes a task only when its limit fits the time left to its block, and a
// block has provider.walltime at most.
func fitsWalltime(cl *client.Client, limit time.Duration) error {
	if cl.Conn == nil || limit <= 0 {
		return nil
	}
	wt := time.Duration(cl.Conn.Pool.WalltimeSeconds) * time.Second
	if wt > 0 && limit >= wt {
		return fmt.Errorf("--time-limit %s: not shorter than the blocks' walltime %s (provider.walltime), so no block could run the tasks; "+
			"shorten the limit or raise the walltime", limit, wt)
	}
	return nil
}

// buildSpecs turns the submit flags and arguments into task specs.
func buildSpecs(c *cli.Context) ([]*wire.TaskSpec, error) {
	base := &wire.TaskSpec{Retries: int32(c.Int("retries")), Priority: int32(c.Int("priority")), ArrayIndex: -1, Noop: c.Bool("noop")}
	if c.Int("retries") < -1 {
		return nil, fmt.Errorf("--retries %d: must be >= 0", c.Int("retries"))
	}
	for _, kv := range c.StringSlice("env") {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fmt.Errorf("--env %q: want KEY=VALUE", kv)
		}
		base.Env = append(base.Env, kv)
	}
	if d := c.Duration("timeout"); d < 0 {
		return nil, fmt.Errorf("--timeout %s: must be positive", d)
	} else {
		base.TimeoutMs = d.Milliseconds()
	}
	cwd := c.String("cwd")
	if cwd == "" {
		cwd, _ = os.Getwd()
	}
	if st, err := os.Stat(cwd); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("--cwd %q: not a directory", cwd)
	}
	base.Cwd = cwd
	args := c.Args().Slice()
	file := c.String("file")
	arr := c.String("array")
	if file != "" && len(args) > 0 {
		return nil, fmt.Errorf("give either --file or a command after --, not both")
	}
	if file == "" && len(args) == 0 {
		return nil, fmt.Errorf("no command: use `htexctl submit -- CMD ARGS...` or --file")
	}
	if file != "" && arr != "" {
		return nil, fmt.Errorf("--array applies to a command, not to --file")
	}
	mk := func(argv []string, idx int64) *wire.TaskSpec {
		s := proto.Clone(base).(*wire.TaskSpec)
		s.Argv = argv
		s.ArrayIndex = idx
		// The pool opens these files itself, from its own working
		// directory: a relative path is made absolute against the task's.
		outPath := func(p string) string {
			p = strings.ReplaceAll(p, "{}", strconv.FormatInt(max(idx, 0), 10))
			if !filepath.IsAbs(p) {
				p = filepath.Join(cwd, p)
			}
			return p
		}
		if p := c.String("stdout"); p != "" {
			s.StdoutPath = outPath(p)
		}
		if p := c.String("stderr"); p != "" {
			s.StderrPath = outPath(p)
		}
		return s
	}
	var specs []*wire.TaskSpec
	switch {
	case file != "":
		var r io.Reader = os.Stdin
		if file != "-" {
			f, err := os.Open(file)
			if err != nil {
				return nil, fmt.Errorf("--file: %w", err)
			}
			defer f.Close()
			r = f
		}
		lines, err := commandLines(r)
		if err != nil {
			return nil, fmt.Errorf("--file %s: %w", file, err)
		}
		if len(lines) == 0 {
			return nil, fmt.Errorf("--file %s: no commands in it", file)
		}
		for n, line := range lines {
			specs = append(specs, mk([]string{"/bin/sh", "-c", line}, int64(n)))
		}
	case arr != "":
		a, b, err := parseRange(arr)
		if err != nil {
			return nil, err
		}
		for i := a; i <= b; i++ {
			is := strconv.FormatInt(i, 10)
			argv := make([]string, len(args))
			for k, x := range args {
				argv[k] = strings.ReplaceAll(x, "{}", is)
			}
			if c.Bool("shell") {
				argv = []string{"/bin/sh", "-c", strings.Join(argv, " ")}
			}
			specs = append(specs, mk(argv, i))
		}
	default:
		argv := args
		if c.Bool("shell") {
			argv = []string{"/bin/sh", "-c", strings.Join(args, " ")}
		}
		specs = append(specs, mk(argv, -1))
	}
	return specs, nil
}

// maxLine bounds one line of a --file.
const maxLine = 1 << 20

// commandLines reads the commands of a --file: one a line, trimmed, blank
// lines and # comments skipped.
func commandLines(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	var lines []string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		lines = append(lines, line)
	}
	return lines, sc.Err()
}

func parseRange(s string) (int64, int64, error) {
	as, bs, ok := strings.Cut(s, "-")
	a, err1 := strconv.ParseInt(as, 10, 64)
	b, err2 := strconv.ParseInt(bs, 10, 64)
	if !ok || err1 != nil || err2 != nil || a < 0 {
		return 0, 0, fmt.Errorf("--array %q: want A-B with 0 <= A <= B", s)
	}
	if b < a {
		return 0, 0, fmt.Errorf("--array %q: the end %d is before the start %d", s, b, a)
	}
	if b-a >= 10_000_000 {
		return 0, 0, fmt.Errorf("--array %q: more than 10,000,000 tasks in one job", s)
	}
	return a, b, nil
}
