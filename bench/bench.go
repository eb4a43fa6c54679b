// Package bench measures the whole system: it starts a daemon in this
// process with the local provider (whose block starts a real `htexctl
// worker` pool), submits tasks through the client channel, and reports
// throughput and submit-to-result latency as the client sees them.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/htex/htex/client"
	"github.com/htex/htex/config"
	"github.com/htex/htex/daemon"
	"github.com/htex/htex/metrics"
	"github.com/htex/htex/rundir"
)

// Options of one run.
type Options struct {
	Mode       string // exec or noop
	Tasks      int
	Workers    int
	Window     int // tasks in flight at most (0 = all)
	Prefetch   int
	Encrypted  bool
	NoJournal  bool   // measure without journal writes (the journal's cost)
	Metrics    bool   // run the daemon with its Prometheus metrics, served on loopback (their cost)
	Executable string // the htexctl binary the block starts
	Log        io.Writer
	Progress   func(done, total int)

	// Pools > 0: no local block; the daemon runs as its own process and
	// this many simulated pools of SlotsPerPool slots (RunSimPools) in
	// another (pools.go). Noop mode only.
	Pools        int
	SlotsPerPool int
}

// Report is what a run measured.
type Report struct {
	Mode           string  `json:"mode"`
	Tasks          int     `json:"tasks"`
	Workers        int     `json:"workers"`
	Seconds        float64 `json:"seconds"`
	TasksPerSecond float64 `json:"tasks_per_second"`
	P50ms          float64 `json:"p50_ms"`
	P99ms          float64 `json:"p99_ms"`
	Encrypted      bool    `json:"encrypted"`
	Journal        bool    `json:"journal"`
	Window         int     `json:"window"`
	Cores          int     `json:"cores"`

	// With simulated pools (Options.Pools) only.
	Pools           int      `json:"pools,omitempty"`
	SlotsPerPool    int      `json:"slots_per_pool,omitempty"`
	RegisterSeconds *float64 `json:"register_seconds,omitempty"` // first pool registered to the last, as status shows
	DaemonRSSMB     float64  `json:"daemon_rss_mb,omitempty"`    // the daemon process's peak RSS (VmHWM)
	StatusP99ms     float64  `json:"status_p99_ms,omitempty"`    // status answered during the run, polled every 50 ms
	StatusPolls     int      `json:"status_polls,omitempty"`
	Metrics         bool     `json:"metrics"`
}

// MaxTasks bounds --tasks: the bench keeps a few words per task in memory.
const MaxTasks = 100_000_000

// checkOptions refuses what the bench cannot run, naming the flag.
func checkOptions(o Options) error {
	switch {
	case o.Mode != "exec" && o.Mode != "noop":
		return fmt.Errorf("--mode %q: want exec or noop", o.Mode)
	case o.Tasks < 1 || o.Tasks > MaxTasks:
		return fmt.Errorf("--tasks %d: want 1 to %d", o.Tasks, MaxTasks)
	case o.Pools == 0 && o.Workers < 1:
		return fmt.Errorf("--workers %d: want at least 1", o.Workers)
	case o.Window < 0:
		return fmt.Errorf("--window %d: want 0 (all) or more", o.Window)
	case o.Prefetch < 0 || o.Prefetch > config.MaxPrefetch:
		return fmt.Errorf("--prefetch %d: want 0 to %d", o.Prefetch, config.MaxPrefetch)
	}
	return nil
}

// Run starts a daemon, runs the benchmark and stops the daemon.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := checkOptions(o); err != nil {
		return nil, err
	}
	if o.Window == 0 {
		o.Window = o.Tasks
	}
	if o.Pools > 0 {
		return runWithPools(ctx, o)
	}
	dir, err := os.MkdirTemp("", "htex-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg := config.Default()
	cfg.Executor.MaxWorkersPerNode = o.Workers
	cfg.Executor.CoresPerWorker = 0.001 // as many slots as asked, whatever the core count
	cfg.Executor.PrefetchCapacity = o.Prefetch
	cfg.Executor.Encrypted = &o.Encrypted
	cfg.Executor.Address = "127.0.0.1" // its pool runs here; plain text stays on loopback
	cfg.Executor.HeartbeatThreshold = config.Duration(120 * time.Second)
	cfg.Strategy.Kind = "none"
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dctx, stopDaemon := context.WithCancel(ctx)
	defer stopDaemon()
	ready := make(chan *rundir.Connection, 1)
	done := make(chan error, 1)
	var mx *metrics.Metrics
	if o.Metrics {
		mx = metrics.New()
		srv, err := mx.Serve("127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer srv.Close()
	}
	go func() {
		done <- daemon.Run(dctx, daemon.Options{Config: cfg, RunDir: dir, Executable: o.Executable, Log: log, NoJournal: o.NoJournal,
			StopGrace: time.Second, Ready: func(c *rundir.Connection) { ready <- c }, Metrics: mx})
	}()
	select {
	case <-ready:
	case err := <-done:
		return nil, fmt.Errorf("daemon: %w", err)
	}
	defer func() { stopDaemon(); <-done }()

	cl, err := client.Dial(dir)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if err := waitForSlots(ctx, cl, o.Workers); err != nil {
		return nil, err
	}
	warm := min(o.Tasks/10, 2000)
	if warm > 0 {
		if _, err := measure(ctx, cl, o, warm, nil); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	return measure(ctx, cl, o, o.Tasks, o.Progress)
}

func waitForSlots(ctx context.Context, cl *client.Client, want int) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		st, err := cl.Status(ctx)
		if err != nil {
			return err
		}
		slots := 0
		for _, p := range st.Pools {
			slots += int(p.Slots)
		}
		if slots >= want {
			return nil
		}
		for _, b := range st.Blocks {
			if b.Message != "" {
				return fmt.Errorf("block %d: %s", b.Id, b.Message)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("the pool did not register within 60 s")
}
