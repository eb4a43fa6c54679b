package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/htex/htex/config"
	"github.com/htex/htex/daemon"
	"github.com/htex/htex/internal/gcpace"
	"github.com/htex/htex/metrics"
	"github.com/htex/htex/rundir"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the daemon in the foreground (interchange, journal, scaler)",
		Description: "Starts the daemon for a run directory. Clients find it through\n" +
			"<run-dir>/connection.json, written once it is ready. Restarting it on the\n" +
			"same run directory resumes unfinished tasks and adopts running blocks.\n" +
			"Stop it with `htexctl stop`, Ctrl-C or SIGTERM.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "site config `FILE` (TOML); without it: the local provider, one block", EnvVars: []string{"HTEX_CONFIG"}},
			runDirFlag,
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
			&cli.StringFlag{Name: "metrics", Usage: "serve Prometheus metrics at http://`ADDR`/metrics: a port alone (9464) listens on loopback only, HOST:PORT where it says (0.0.0.0:9464: every interface); off by default", EnvVars: []string{"HTEX_METRICS"}},
			&cli.DurationFlag{Name: "stop-grace", Value: 30 * time.Second, Usage: "on stop, how long running tasks may finish before their pools are told to exit"},
		},
		Action: func(c *cli.Context) error {
			cfg, err := loadConfig(c.String("config"))
			if err != nil {
				return usageError("%v", err)
			}
			dir, err := resolveRunDir(c, cfg.Executor.Label)
			if err != nil {
				return usageError("%v", err)
			}
			// As render does: executor.run_dir counts when neither flag nor
			// env gives one (not c.IsSet: it reports an empty HTEX_RUN_DIR as
			// set), made absolute, since PBS and Slurm start the block script
			// in $HOME or the submit folder, not where the daemon runs.
			if cfg.Executor.RunDir != "" && c.String(runDirFlag.Name) == "" && os.Getenv("HTEX_RUN_DIR") == "" {
				if dir, err = filepath.Abs(cfg.Executor.RunDir); err != nil {
					return usageError("executor.run_dir %q: %v", cfg.Executor.RunDir, err)
				}
			}
			if err := rundir.Create(dir); err != nil {
				return failure("%v", err)
			}
			level, err := parseLevel(c.String("log-level"))
			if err != nil {
				return usageError("%v", err)
			}
			logf, err := os.OpenFile(filepath.Join(dir, rundir.LogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
			if err != nil {
				return failure("open log: %v", err)
			}
			defer logf.Close()
			log := slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, logf), &slog.HandlerOptions{Level: level}))
			exe, err := os.Executable()
			if err != nil {
				return failure("find own executable: %v", err)
			}
			var mx *metrics.Metrics
			if v := c.String("metrics"); v != "" {
				addr, err := metrics.ListenAddr(v)
				if err != nil {
					return usageError("%v", err)
				}
				mx = metrics.New()
				srv, err := mx.Serve(addr)
				if err != nil {
					return failure("%v", err)
				}
				defer srv.Close()
				log.Info("metrics listening", "url", "http://"+srv.Addr()+"/metrics")
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			reserveProcs(daemonBlockers)
			go gcpace.Run(ctx, time.Second) // ends with ctx, when serve returns
			err = daemon.Run(ctx, daemon.Options{Config: cfg, RunDir: dir, Executable: exe, Log: log,
				StopGrace: c.Duration("stop-grace"), Metrics: mx})
			if err != nil {
				return failure("%v", err)
			}
			return nil
		},
	}
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default(), nil
	}
	return config.Load(path)
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
}
