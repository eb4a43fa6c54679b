package app

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/htex/htex/blockscript"
	"github.com/htex/htex/config"
	"github.com/urfave/cli/v2"
)

// renderOut and renderErrOut receive what render and config check print;
// tests replace them.
var (
	renderOut    io.Writer = os.Stdout
	renderErrOut io.Writer = os.Stderr
)

func renderCommand() *cli.Command {
	return &cli.Command{
		Name:  "render",
		Usage: "print the batch script a block would be submitted with",
		Description: "render prints the script the daemon would write to <run-dir>/blocks/<id>/submit.sh\n" +
			"and hand to sbatch, qsub or the local provider, so that a site config can be\n" +
			"checked before an allocation is spent. Without --config it renders the local default.",
		ArgsUsage: " ",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "site config `FILE` (TOML)"},
			&cli.Int64Flag{Name: "block-id", Usage: "block id to render", Value: 0},
			runDirFlag,
		},
		Action: runRender,
	}
}

func runRender(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("render: unexpected argument %q (the config goes in --config)", c.Args().First())
	}
	cfg := config.Default()
	if path := c.String("config"); path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return usageError("render: %v", err)
		}
	}
	id := c.Int64("block-id")
	if id < 0 {
		return usageError("render: --block-id %d: must be >= 0", id)
	}
	runDir, err := resolveRunDir(c, cfg.Executor.Label)
	if err != nil {
		return usageError("render: %v", err)
	}
	// As serve does: executor.run_dir counts when neither flag nor env gives
	// one. (Not c.IsSet: it also reports an empty HTEX_RUN_DIR as set.)
	if cfg.Executor.RunDir != "" && c.String(runDirFlag.Name) == "" && os.Getenv("HTEX_RUN_DIR") == "" {
		if runDir, err = filepath.Abs(cfg.Executor.RunDir); err != nil {
			return usageError("render: executor.run_dir %q: %v", cfg.Executor.RunDir, err)
		}
	}
	prefix, err := workerPrefix(cfg)
	if err != nil {
		return failure("render: %v", err)
	}
	script, err := blockscript.Render(cfg, blockscript.Params{
		BlockID:       id,
		RunDir:        runDir,
		BlockDir:      filepath.Join(runDir, "blocks", strconv.FormatInt(id, 10)),
		WorkerCommand: blockscript.WorkerCommand(prefix, runDir, id),
	})
	if err != nil {
		return usageError("render: %v", err)
	}
	_, err = io.WriteString(renderOut, script)
	return err
}

// workerPrefix is what starts htexctl in a batch script: executor.worker_command
// when set (shell words, verbatim), else the absolute path of this binary.
func workerPrefix(cfg *config.Config) (string, error) {
	if cfg.Executor.WorkerCommand != "" {
		return cfg.Executor.WorkerCommand, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("cannot find the htexctl binary (%v); set executor.worker_command", err)
	}
	if abs, err := filepath.Abs(exe); err == nil {
		exe = abs
	}
	return blockscript.Quote(exe), nil
}

func configCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "work with site configs",
		Subcommands: []*cli.Command{{
			Name:      "check",
			Usage:     "load a site config and report every problem in it",
			ArgsUsage: "FILE",
			Description: "check reads FILE, applies the defaults and validates every option, then renders\n" +
				"a block script to catch template and launcher problems. It prints \"ok: <summary>\"\n" +
				"and exits 0, or prints each problem and exits 2. For a PBS config whose label names\n" +
				"a machine with a queue table (polaris, aurora), a block outside its queue's node or\n" +
				"walltime range is warned about on stderr (exit 0).",
			Action: runConfigCheck,
		}},
	}
}

func runConfigCheck(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError("config check: want one FILE, got %d arguments", c.NArg())
	}
	path := c.Args().First()
	problems, cfg := checkConfig(path)
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(renderErrOut, p)
		}
		n := "1 problem"
		if len(problems) > 1 {
			n = fmt.Sprintf("%d problems", len(problems))
		}
		return usageError("config check: %s: %s", path, n)
	}
	for _, w := range queueWarnings(cfg) {
		fmt.Fprintf(renderErrOut, "warning: %s: %s\n", path, w)
	}
	_, err := fmt.Fprintf(renderOut, "ok: %s\n", summary(path, cfg))
	return err
}

// checkConfig loads a config and renders a sample block script; it returns
// every problem, each prefixed with the file name.
func checkConfig(path string) ([]string, *config.Config) {
	cfg, err := config.Load(path)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			out := make([]string, len(ce.Problems))
			for i, p := range ce.Problems {
				out[i] = path + ": " + p
			}
			return out, nil
		}
		return []string{err.Error()}, nil
	}
	_, err = blockscript.Render(cfg, blockscript.Params{
		BlockID: 0, RunDir: "/htex-config-check", WorkerCommand: "htexctl worker",
	})
	if err != nil {
		return []string{path + ": " + err.Error()}, nil
	}
	return nil, cfg
}

// summary says in one line what a config will do.
func summary(path string, cfg *config.Config) string {
	p, e, s := cfg.Provider, cfg.Executor, cfg.Strategy
	var where []string
	add := func(name, v string) {
		if v != "" {
			where = append(where, name+" "+v)
		}
	}
	add("account", p.Account)
	add("partition", p.Partition)
	add("qos", p.QOS)
	add("queue", p.Queue)
	where = append(where,
		fmt.Sprintf("%d node(s) per block", p.NodesPerBlock),
		"walltime "+p.Walltime,
		"launcher "+p.Launcher)
	if p.Template != "" {
		where = append(where, "template "+p.Template)
	}
	enc := "encrypted"
	if !e.IsEncrypted() {
		enc = "NOT encrypted"
	}
	return fmt.Sprintf("%s: label %s, provider %s (%s), blocks init %d min %d max %d, strategy %s, %s",
		path, e.Label, p.Kind, strings.Join(where, ", "), *p.InitBlocks, p.MinBlocks, *p.MaxBlocks, s.Kind, enc)
}
