package app

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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
			"Tasks of a size:      htexctl submit --cores 8 --gpus 1 --mem 16G -- ./train\n" +
			"  (each task is charged the whole slots that cover it and runs on exactly 8 CPUs;\n" +
			"  memory is accounted when placing it, not enforced; docs/task-sizes.md)\n" +
			"The call returns once every task is durable in the daemon's journal.\n" +
			"Tasks see HTEX_TASK_ID, HTEX_JOB_ID, HTEX_ARRAY_INDEX, HTEX_WORKER_RANK and their pinning.",
		Flags: []cli.Flag{
			runDirFlag,
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "read one command per line from `FILE` (- = stdin); blank lines and # comments are skipped"},
			&cli.StringFlag{Name: "array", Usage: "run the command once per index `A-B`, with {} replaced by the index"},
			&cli.BoolFlag{Name: "shell", Usage: "run CMD ARGS joined through sh -c"},
			&cli.GenericFlag{Name: "env", Aliases: []string{"e"}, Value: &envValues{}, Usage: "set `K=V` in the tasks' environment (repeatable; the value is taken as typed, commas and spaces included)"},
			&cli.StringFlag{Name: "cwd", Usage: "working directory of the tasks (default: the current directory)"},
			&cli.DurationFlag{Name: "timeout", Aliases: []string{"time-limit"}, Usage: "the task's time limit: its process group is killed after this `DURATION` (e.g. 90s, 2h); " +
				"a pool takes the task only when the limit fits the time left to its block"},
			&cli.IntFlag{Name: "retries", Value: -1, Usage: "times a task is run again when its pool is lost (default: the executor's, 2)"},
			&cli.IntFlag{Name: "priority", Usage: "higher runs first"},
			&cli.StringFlag{Name: "cores", Usage: "each task needs `N` CPUs: it gets a compact set of exactly N CPUs (its mask and OMP_NUM_THREADS) and the whole slots that hold them (docs/task-sizes.md)"},
			&cli.StringFlag{Name: "gpus", Usage: "each task needs `G` accelerators (in CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES or ZE_AFFINITY_MASK, as the pool's slots set them)"},
			&cli.StringFlag{Name: "mem", Usage: "each task needs `SIZE` of memory (512M, 4G, 1.5G, bytes): accounted when placing it, not enforced"},
			&cli.StringFlag{Name: "name", Usage: "job name shown by status"},
			&cli.StringFlag{Name: "stdout", Usage: "write each task's full stdout to `PATH` ({} = array index or line number)"},
			&cli.StringFlag{Name: "stderr", Usage: "write each task's full stderr to `PATH` ({} = array index or line number)"},
			&cli.IntFlag{Name: "nodes", Usage: "run each task across `N` whole nodes of one block (N >= 2: an MPI task; its command starts its ranks with $HTEX_MPI_PREFIX, see docs/mpi-tasks.md)", DefaultText: "1"},
			&cli.IntFlag{Name: "ranks-per-node", Usage: "MPI ranks per node of a --nodes task, `R`", DefaultText: "1"},
			&cli.BoolFlag{Name: "wait", Aliases: []string{"w"}, Usage: "wait for the job like htexctl wait"},
			&cli.BoolFlag{Name: "noop", Hidden: true, Usage: "pools answer without running anything (benchmarks)"},
		},
		Action: func(c *cli.Context) error {
			src, err := buildSource(c)
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
			jobID, err := cl.SubmitFrom(ctx, c.String("name"), src)
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

// envValues collects --env values exactly as typed: urfave/cli's string
// slices split values at commas, trim spaces, and carry the list through
// JSON, which turns bytes that are not UTF-8 into U+FFFD.
type envValues struct{ list []string }

// envSerialized marks the form in which urfave/cli copies the value from
// one name of the flag to its alias (Serializer): the values joined by NUL,
// which no value from the command line can hold.
const envSerialized = "\x00htex-env\x00"

func (e *envValues) Set(v string) error {
	if rest, ok := strings.CutPrefix(v, envSerialized); ok {
		e.list = nil
		if rest != "" {
			e.list = strings.Split(rest, "\x00")
		}
		return nil
	}
	e.list = append(e.list, v)
	return nil
}

// Serialize implements cli.Serializer.
func (e *envValues) Serialize() string { return envSerialized + strings.Join(e.list, "\x00") }

func (e *envValues) String() string {
	if e == nil {
		return ""
	}
	return strings.Join(e.list, " ")
}

func (e *envValues) values() []string {
	if e == nil {
		return nil
	}
	return e.list
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

// buildSource turns the submit flags and arguments into the job's tasks,
// made on demand (client.Source), and checks every one of them: a bad
// task is refused here, before the daemon is asked anything.
func buildSource(c *cli.Context) (client.Source, error) {
	src, err := uncheckedSource(c)
	if err != nil {
		return client.Source{}, err
	}
	return src.Check()
}

// baseSpec is what every task of the submit shares, from the flags, and
// the tasks' working directory.
func baseSpec(c *cli.Context) (base *wire.TaskSpec, cwd string, err error) {
	// A value out of range is refused, not wrapped: the daemon keeps
	// retries in 16 bits (wire.MaxRetries), the priority in 32.
	if r := c.Int("retries"); r != -1 {
		if err := wire.CheckRetries(r); err != nil {
			return nil, "", fmt.Errorf("--retries %d: %w", r, err)
		}
	}
	if p := c.Int("priority"); p < math.MinInt32 || p > math.MaxInt32 {
		return nil, "", fmt.Errorf("--priority %d: must be in [%d, %d]", p, math.MinInt32, math.MaxInt32)
	}
	base = &wire.TaskSpec{Retries: int32(c.Int("retries")), Priority: int32(c.Int("priority")), ArrayIndex: -1, Noop: c.Bool("noop")}
	size, err := client.ParseSize(c.String("cores"), c.String("gpus"), c.String("mem"))
	if err != nil {
		return nil, "", err
	}
	size.Apply(base)
	// These travel as protobuf strings, which must be UTF-8 (argv, env and
	// cwd travel as bytes, exactly).
	for _, f := range []string{"name", "stdout", "stderr"} {
		if v := c.String(f); !utf8.ValidString(v) {
			return nil, "", fmt.Errorf("--%s %q: not valid UTF-8, which htex does not support here", f, v)
		}
	}
	var env []string
	ev, _ := c.Generic("env").(*envValues)
	for _, kv := range ev.values() {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, "", fmt.Errorf("--env %q: want KEY=VALUE", kv)
		}
		env = append(env, kv)
	}
	base.SetEnvs(env)
	if err := nodeFlags(c, base); err != nil {
		return nil, "", err
	}
	if d := c.Duration("timeout"); d < 0 {
		return nil, "", fmt.Errorf("--timeout %s: must be positive", d)
	} else {
		base.TimeoutMs = d.Milliseconds()
	}
	cwd = c.String("cwd")
	if cwd == "" {
		cwd, _ = os.Getwd()
	}
	if st, err := os.Stat(cwd); err != nil || !st.IsDir() {
		return nil, "", fmt.Errorf("--cwd %q: not a directory", cwd)
	}
	base.SetDir(cwd)
	return base, cwd, nil
}

func uncheckedSource(c *cli.Context) (client.Source, error) {
	var none client.Source
	base, cwd, err := baseSpec(c)
	if err != nil {
		return none, err
	}
	args := c.Args().Slice()
	file := c.String("file")
	arr := c.String("array")
	if file != "" && len(args) > 0 {
		return none, fmt.Errorf("give either --file or a command after --, not both")
	}
	if file == "" && len(args) == 0 {
		return none, fmt.Errorf("no command: use `htexctl submit -- CMD ARGS...` or --file")
	}
	if file != "" && arr != "" {
		return none, fmt.Errorf("--array applies to a command, not to --file")
	}
	mk, shell := specMaker(c, base, cwd), c.Bool("shell")
	switch {
	case file != "":
		var r io.Reader = os.Stdin
		if file != "-" {
			f, err := os.Open(file)
			if err != nil {
				return none, fmt.Errorf("--file: %w", err)
			}
			defer f.Close()
			r = f
		}
		lines, err := commandLines(r)
		if err != nil {
			return none, fmt.Errorf("--file %s: %w", file, err)
		}
		if lines.len() == 0 {
			return none, fmt.Errorf("--file %s: no commands in it", file)
		}
		return fileSource(file, lines, mk), nil
	case arr != "":
		a, b, err := parseRange(arr)
		if err != nil {
			return none, err
		}
		return arraySource(args, a, b, shell, mk), nil
	default:
		argv := args
		if shell {
			argv = []string{"/bin/sh", "-c", strings.Join(args, " ")}
		}
		src := client.Specs([]*wire.TaskSpec{mk(argv, -1)})
		src.Name = func(int) string { return "the command" }
		return src, nil
	}
}

// specMaker returns the maker of one task of the submit: base with argv,
// its array index, and its --stdout/--stderr paths.
func specMaker(c *cli.Context, base *wire.TaskSpec, cwd string) func(argv []string, idx int64) *wire.TaskSpec {
	stdout, stderr := c.String("stdout"), c.String("stderr")
	return func(argv []string, idx int64) *wire.TaskSpec {
		s := proto.Clone(base).(*wire.TaskSpec)
		s.SetArgs(argv)
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
		if stdout != "" {
			s.StdoutPath = outPath(stdout)
		}
		if stderr != "" {
			s.StderrPath = outPath(stderr)
		}
		return s
	}
}

// arraySource is the tasks of --array A-B: args with {} replaced by the
// index (under sh -c with --shell).
func arraySource(args []string, a, b int64, shell bool, mk func([]string, int64) *wire.TaskSpec) client.Source {
	return client.Source{N: int(b - a + 1), At: func(i int) *wire.TaskSpec {
		idx := a + int64(i)
		is := strconv.FormatInt(idx, 10)
		argv := make([]string, len(args))
		for k, x := range args {
			argv[k] = strings.ReplaceAll(x, "{}", is)
		}
		if shell {
			argv = []string{"/bin/sh", "-c", strings.Join(argv, " ")}
		}
		return mk(argv, idx)
	}, Name: func(i int) string { return fmt.Sprintf("--array index %d", a+int64(i)) }}
}

// fileSource turns the commands of a --file into tasks (sh -c LINE, the
// line's bytes as they are), and refuses one that could not run as
// written, naming its line.
func fileSource(file string, lines *commandList, mk func([]string, int64) *wire.TaskSpec) client.Source {
	return client.Source{N: lines.len(), At: func(n int) *wire.TaskSpec {
		return mk([]string{"/bin/sh", "-c", lines.at(n).text}, int64(n))
	}, Name: func(n int) string { return fmt.Sprintf("--file %s line %d", file, lines.no[n]) }}
}

// maxLine bounds one line of a --file: a longer one could not start as a
// task (wire.MaxArgEnvBytes).
const maxLine = wire.MaxArgEnvBytes

// commandLine is one command of a --file and its line number (from 1).
type commandLine struct {
	no   int
	text string
}

// commandList holds the commands of a --file compactly, for a file of
// 10^6 lines: their bytes in one buffer, and two numbers each.
type commandList struct {
	text []byte
	end  []int // the end of command i in text
	no   []int // its line number
}

func (l *commandList) len() int { return len(l.end) }

// at returns command i.
func (l *commandList) at(i int) commandLine {
	start := 0
	if i > 0 {
		start = l.end[i-1]
	}
	return commandLine{no: l.no[i], text: string(l.text[start:l.end[i]])}
}

// commandLines reads the commands of a --file: one a line, trimmed, blank
// lines and # comments skipped.
func commandLines(r io.Reader) (*commandList, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	l := &commandList{}
	if f, ok := r.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			l.text = make([]byte, 0, st.Size()) // no copies as it grows
		}
	}
	no := 0
	for sc.Scan() {
		no++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		l.text = append(l.text, line...)
		l.end = append(l.end, len(l.text))
		l.no = append(l.no, no)
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return nil, fmt.Errorf("line %d: longer than %d bytes, the most a task's command line can take (Linux's limit on argv and env); pass large inputs in a file", no+1, maxLine)
	}
	return l, sc.Err()
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
