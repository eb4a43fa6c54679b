package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/htex/htex/client"
	"github.com/htex/htex/rundir"
)

// runWithPools is Run with simulated pools (Options.Pools > 0): the daemon
// (`htexctl serve`) and the pools (`htexctl bench-pools`) run as two child
// processes, so that the daemon's peak RSS is its own; this process is
// the client.
func runWithPools(ctx context.Context, o Options) (*Report, error) {
	if err := checkPoolsOptions(o); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "htex-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfgPath := filepath.Join(dir, "bench.toml")
	if err := os.WriteFile(cfgPath, []byte(poolsConfig(o)), 0o600); err != nil {
		return nil, err
	}
	runDir := filepath.Join(dir, "run")
	logw := o.Log
	if logw == nil {
		logw = os.Stderr
	}
	daemon, err := startChild("the daemon", logw, o.Executable, "serve", "--config", cfgPath, "--run-dir", runDir,
		"--log-level", "warn", "--stop-grace", "1s")
	if err != nil {
		return nil, err
	}
	defer daemon.stop(30 * time.Second)
	cl, err := dialWhenReady(ctx, runDir, daemon.done)
	if err != nil {
		return nil, err
	}
	defer cl.Close()

	pools, err := startChild("the simulated pools", logw, o.Executable, "bench-pools", "--run-dir", runDir,
		"--pools", strconv.Itoa(o.Pools), "--slots-per-pool", strconv.Itoa(o.SlotsPerPool), "--prefetch", strconv.Itoa(o.Prefetch))
	if err != nil {
		return nil, err
	}
	defer pools.stop(10 * time.Second)
	regSeconds, err := waitForPools(ctx, cl, o.Pools, pools.done)
	if err != nil {
		return nil, err
	}
	o.Workers = o.Pools * o.SlotsPerPool
	warm := min(o.Tasks/10, 2000)
	if warm > 0 {
		if _, err := measure(ctx, cl, o, warm, nil); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	polls := pollStatus(ctx, runDir)
	r, err := measure(ctx, cl, o, o.Tasks, o.Progress)
	lat := polls()
	if err != nil {
		return nil, err
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		r.StatusPolls = len(lat)
		r.StatusP99ms = float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()) / 1000
	}
	r.Pools, r.SlotsPerPool, r.RegisterSeconds = o.Pools, o.SlotsPerPool, &regSeconds
	if r.DaemonRSSMB, err = peakRSSMB(daemon.cmd.Process.Pid); err != nil {
		return nil, fmt.Errorf("daemon RSS: %w", err)
	}
	return r, nil
}

func checkPoolsOptions(o Options) error {
	if o.Mode != "noop" {
		return fmt.Errorf("--pools: simulated pools run noop tasks only: want --mode noop, not %q", o.Mode)
	}
	if o.NoJournal {
		return errors.New("--pools: the daemon runs as `htexctl serve`, always with its journal: want --journal true")
	}
	if o.Metrics {
		return errors.New("--pools: --metrics is not supported with simulated pools; measure metrics with a local block")
	}
	if o.SlotsPerPool < 1 {
		return fmt.Errorf("--slots-per-pool %d: want at least 1", o.SlotsPerPool)
	}
	return nil
}

// poolsConfig is the daemon's config: no blocks, as the simulated pools
// are the only ones, and a long heartbeat threshold, as a loaded machine
// must not lose pools in the middle.
func poolsConfig(o Options) string {
	return fmt.Sprintf(`[executor]
label = "bench"
encrypted = %v
prefetch_capacity = %d
heartbeat_period = 10
heartbeat_threshold = 300
[provider]
kind = "local"
init_blocks = 0
min_blocks = 0
max_blocks = 1
[strategy]
kind = "none"
`, o.Encrypted, o.Prefetch)
}

// pollStatus asks for status every 50 ms over a client of its own until
// the returned function is called, which returns how long each answer
// took: status must stay answerable while the daemon is under load.
func pollStatus(ctx context.Context, dir string) func() []time.Duration {
	stop := make(chan struct{})
	done := make(chan []time.Duration, 1)
	go func() {
		var lat []time.Duration
		defer func() { done <- lat }()
		cl, err := client.Dial(dir)
		if err != nil {
			return
		}
		defer cl.Close()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			start := time.Now()
			if _, err := cl.Status(ctx); err != nil {
				return
			}
			lat = append(lat, time.Since(start))
		}
	}()
	return func() []time.Duration {
		close(stop)
		return <-done
	}
}

// dialWhenReady waits for the daemon's connection file and a status reply.
func dialWhenReady(ctx context.Context, dir string, daemonDone <-chan error) (*client.Client, error) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-daemonDone:
			return nil, fmt.Errorf("the daemon exited: %v", err)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		cl, err := client.Dial(dir)
		if errors.Is(err, client.ErrNoDaemon) || errors.Is(err, rundir.ErrNoDaemon) { // not up yet
			continue
		}
		if err != nil {
			return nil, err
		}
		if _, err := cl.Status(ctx); err != nil {
			cl.Close()
			continue
		}
		return cl, nil
	}
	return nil, errors.New("the daemon did not answer within 60 s")
}

// waitForPools waits until want pools are registered and returns the time
// from the first registration seen to the last, as status shows them
// (polled every 20 ms).
func waitForPools(ctx context.Context, cl *client.Client, want int, poolsDone <-chan error) (float64, error) {
	var first time.Time
	deadline := time.Now().Add(300 * time.Second)
	for time.Now().Before(deadline) {
		st, err := cl.Status(ctx)
		if err != nil {
			return 0, err
		}
		now := time.Now()
		if n := len(st.Pools); n > 0 && first.IsZero() {
			first = now
		}
		if len(st.Pools) >= want {
			return now.Sub(first).Seconds(), nil
		}
		select {
		case err := <-poolsDone:
			return 0, fmt.Errorf("the simulated pools exited: %v", err)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("%d simulated pools did not all register within 300 s", want)
}

// peakRSSMB reads a process's peak resident set (VmHWM, proc(5)).
func peakRSSMB(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM %q: %w", v, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, errors.New("no VmHWM line in /proc/PID/status")
}

// child is a process the bench started, and its end.
type child struct {
	cmd  *exec.Cmd
	done chan error // its Wait, once
}

// startChild starts executable with args, its output to logw.
func startChild(what string, logw io.Writer, executable string, args ...string) (*child, error) {
	cmd := exec.Command(executable, args...)
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", what, err)
	}
	c := &child{cmd: cmd, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	return c, nil
}

// stop ends the child with SIGTERM, or SIGKILL after grace.
func (c *child) stop(grace time.Duration) {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		c.cmd.Process.Kill()
		<-c.done
	}
}
