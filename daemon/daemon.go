// Package daemon assembles `htexctl serve`: the run directory, keys, the
// journal, the interchange and the block loop (scaler + provider). It owns
// their lifetimes: it starts each, and on stop drains, cancels blocks and
// closes everything in order.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/htex/htex/config"
	"github.com/htex/htex/interchange"
	"github.com/htex/htex/internal/execx"
	"github.com/htex/htex/internal/zsock"
	"github.com/htex/htex/journal"
	"github.com/htex/htex/metrics"
	"github.com/htex/htex/providers"
	"github.com/htex/htex/providers/local"
	"github.com/htex/htex/providers/pbs"
	"github.com/htex/htex/providers/slurm"
	"github.com/htex/htex/rundir"
	"github.com/htex/htex/wire"
)

// Options configure a daemon.
type Options struct {
	Config     *config.Config
	RunDir     string
	Executable string // the htexctl binary the block scripts start
	Log        *slog.Logger
	StopGrace  time.Duration // how long stop waits for running tasks
	Ready      func(*rundir.Connection)
	// NoJournal discards journal writes: only for `htexctl bench
	// --journal=false`, which measures the journal's cost. Nothing
	// survives a restart of such a daemon.
	NoJournal bool
	// Metrics, when set, is fed by the interchange and the scaler and
	// reads their state at scrape time (serve --metrics).
	Metrics *metrics.Metrics
}

// Run serves until ctx ends or a client asks to stop.
func Run(ctx context.Context, opt Options) error {
	cfg := opt.Config
	log := opt.Log
	if log == nil {
		log = slog.Default()
	}
	if opt.StopGrace == 0 {
		opt.StopGrace = 30 * time.Second
	}
	if err := rundir.Create(opt.RunDir); err != nil {
		return err
	}
	release, err := lockPid(opt.RunDir)
	if err != nil {
		return err
	}
	defer release()

	enc := cfg.Executor.IsEncrypted()
	var serverKeys rundir.KeyPair
	warning := ""
	if enc {
		if err := rundir.EnsureKeys(opt.RunDir); err != nil {
			return err
		}
		if serverKeys, err = rundir.LoadKeyPair(opt.RunDir, rundir.Server); err != nil {
			return err
		}
		cp, err := rundir.LoadPublicKey(opt.RunDir, rundir.Client)
		if err != nil {
			return err
		}
		pp, err := rundir.LoadPublicKey(opt.RunDir, rundir.Pool)
		if err != nil {
			return err
		}
		if err := zsock.StartAuth(cp, pp); err != nil {
			return err
		}
	} else {
		warning = "encryption is off (encrypted = false): anyone who can reach the ports can submit tasks or pose as a pool"
		log.Warn(warning)
	}

	jr, err := journal.Open(filepath.Join(opt.RunDir, rundir.JournalFile))
	if err != nil {
		return err
	}
	defer jr.Close()
	if opt.NoJournal {
		jr.DiscardWrites()
	}

	// A restarted daemon binds the ports it had, so that pools and clients
	// of the earlier one reconnect.
	clientPort, workerPort := cfg.Executor.ClientPort, cfg.Executor.WorkerPort
	if clientPort == 0 {
		clientPort = metaInt(jr, "client_port")
	}
	if workerPort == 0 { // with worker_port_range: the previous port if it is in the range
		prev, r := metaInt(jr, "worker_port"), cfg.Executor.WorkerPortRange
		if r == [2]int{} || (prev >= r[0] && prev <= r[1]) {
			workerPort = prev
		}
	}
	prov, err := newProvider(cfg)
	if err != nil {
		return err
	}
	blocks := newBlockLoop(cfg, opt, prov, jr, log)

	ix, err := interchange.New(interchange.Options{
		Label: cfg.Executor.Label, RunDir: opt.RunDir, Provider: prov.Name(), BindHost: bindHost(cfg),
		ClientPort: clientPort, WorkerPort: workerPort, WorkerPortRange: cfg.Executor.WorkerPortRange,
		Encrypted: enc, ServerSecret: serverKeys.Secret,
		HeartbeatPeriod: cfg.Executor.HeartbeatPeriod.D(), HeartbeatThreshold: cfg.Executor.HeartbeatThreshold.D(),
		DefaultRetries: retriesDefault(cfg), Journal: jr, Log: log, Blocks: blocks, Warning: warning,
		DrainPeriod: cfg.Executor.DrainPeriod.D(), Observer: observer(opt.Metrics),
	})
	if err != nil && (clientPort != cfg.Executor.ClientPort || workerPort != cfg.Executor.WorkerPort) {
		log.Warn("could not bind the ports of the previous run; taking new ones (pools of that run will not find this daemon)", "err", err)
		ix, err = interchange.New(interchange.Options{
			Label: cfg.Executor.Label, RunDir: opt.RunDir, Provider: prov.Name(), BindHost: bindHost(cfg),
			ClientPort: cfg.Executor.ClientPort, WorkerPort: cfg.Executor.WorkerPort, WorkerPortRange: cfg.Executor.WorkerPortRange,
			Encrypted: enc, ServerSecret: serverKeys.Secret,
			HeartbeatPeriod: cfg.Executor.HeartbeatPeriod.D(), HeartbeatThreshold: cfg.Executor.HeartbeatThreshold.D(),
			DefaultRetries: retriesDefault(cfg), Journal: jr, Log: log, Blocks: blocks, Warning: warning,
			DrainPeriod: cfg.Executor.DrainPeriod.D(), Observer: observer(opt.Metrics),
		})
	}
	if err != nil {
		return err
	}
	blocks.ix = ix
	opt.Metrics.SetSource(func() metrics.Snapshot { return metricsSnapshot(ix.Stats(), blocks.BlockStatuses()) })
	if err := ix.Restore(); err != nil {
		return err
	}
	jr.SetMeta("client_port", strconv.Itoa(ix.ClientPort()))
	jr.SetMeta("worker_port", strconv.Itoa(ix.WorkerPort()))
	if err := blocks.adopt(ctx); err != nil {
		return err
	}
	ix.ForgetBlocks(blocks.gone)

	addrs, err := advertised(ctx, cfg)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	conn := &rundir.Connection{
		ProtocolVersion: wire.Version, Label: cfg.Executor.Label, Pid: os.Getpid(), Hostname: host,
		Addresses: addrs, ClientPort: ix.ClientPort(), WorkerPort: ix.WorkerPort(), Encrypted: enc,
		ServerPublicKey: serverKeys.Public, StartedAt: time.Now().UTC(), Pool: poolSettings(cfg),
	}
	if err := rundir.WriteConnection(opt.RunDir, conn); err != nil {
		return err
	}
	defer rundir.RemoveConnection(opt.RunDir)
	log.Info("daemon ready", "run_dir", opt.RunDir, "client_port", conn.ClientPort, "worker_port", conn.WorkerPort,
		"addresses", strings.Join(conn.Addresses, ","), "encrypted", enc, "provider", prov.Name())
	if opt.Ready != nil {
		opt.Ready(conn)
	}

	ixCtx, stopIx := context.WithCancel(context.Background())
	ixDone := make(chan error, 1)
	go func() { ixDone <- ix.Run(ixCtx) }()
	loopCtx, stopLoop := context.WithCancel(context.Background())
	loopDone := make(chan struct{})
	go func() { defer close(loopDone); blocks.run(loopCtx) }()

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("signal received: stopping")
	case <-ix.StopRequested():
	case runErr = <-ixDone:
		ixDone <- runErr
		log.Error("interchange stopped", "err", runErr)
	}

	// Stop: no new tasks, let running ones finish (bounded), tell pools to
	// exit, cancel blocks. Queued tasks stay in the journal for a restart.
	stopLoop()
	<-loopDone
	grace, cancelGrace := context.WithTimeout(context.Background(), opt.StopGrace)
	ix.Do(grace, func(st *interchange.State) { st.StopDispatch() })
	for grace.Err() == nil && runErr == nil {
		n := -1
		if ix.Do(grace, func(st *interchange.State) { n = st.Running() }) != nil || n == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancelGrace()
	shortCtx, cancelShort := context.WithTimeout(context.Background(), 5*time.Second)
	ix.Do(shortCtx, func(st *interchange.State) { st.ShutdownPools("daemon stopping") })
	cancelShort()
	time.Sleep(200 * time.Millisecond) // let the shutdown messages leave
	blocks.cancelAll(context.Background())
	stopIx()
	if err := <-ixDone; err != nil && runErr == nil {
		runErr = err
	}
	blocks.wait()
	log.Info("daemon stopped")
	return runErr
}

func retriesDefault(cfg *config.Config) int {
	if cfg.Executor.Retries > 0 {
		return cfg.Executor.Retries
	}
	return config.DefaultRetries
}

func metaInt(j *journal.Journal, key string) int {
	v, err := j.Meta(key)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(v)
	return n
}

func bindHost(cfg *config.Config) string {
	return "*"
}

// advertised lists the addresses pools probe: the configured one, or every
// non-loopback address then loopback. A configured name is resolved here,
// once, so that pools (which may run the static htexctl, where libzmq
// cannot resolve names) are given numbers.
func advertised(ctx context.Context, cfg *config.Config) ([]string, error) {
	a := cfg.Executor.Address
	if a == "" {
		return zsock.Addresses(), nil
	}
	addrs, err := zsock.NumericHosts(ctx, []string{a})
	if err != nil {
		return nil, fmt.Errorf("executor.address = %q: %w", a, err)
	}
	return addrs, nil
}

func poolSettings(cfg *config.Config) rundir.PoolSettings {
	e := cfg.Executor
	wt, _ := cfg.Provider.WalltimeDuration()
	return rundir.PoolSettings{
		MaxWorkersPerNode: e.MaxWorkersPerNode, CoresPerWorker: e.CoresPerWorker, MemPerWorker: e.MemPerWorker,
		CPUAffinity: e.CPUAffinity, Accelerators: e.AvailableAccelerators, GPUsPerNode: e.GPUsPerNode,
		AllowSharedCPUs: e.AllowSharedCPUs, AcceleratorVendor: e.AcceleratorVendor, PrefetchCapacity: e.PrefetchCapacity,
		HeartbeatPeriodMS: e.HeartbeatPeriod.D().Milliseconds(), HeartbeatThreshMS: e.HeartbeatThreshold.D().Milliseconds(),
		DrainPeriodMS: e.DrainPeriod.D().Milliseconds(), OutputTailBytes: e.OutputTailBytes, WalltimeSeconds: int64(wt.Seconds()),
	}
}

func newProvider(cfg *config.Config) (providers.Provider, error) {
	run := execx.Exec{Timeout: cfg.Provider.CmdTimeout.D()}
	switch cfg.Provider.Kind {
	case "local":
		return local.New(), nil
	case "slurm":
		return slurm.New(cfg.Provider, run), nil
	case "pbs":
		return pbs.New(cfg.Provider, run), nil
	}
	return nil, fmt.Errorf("provider.kind %q: want local, slurm or pbs", cfg.Provider.Kind)
}

// lockPid refuses a second daemon on the same run directory.
func lockPid(dir string) (func(), error) {
	path := filepath.Join(dir, rundir.PidFile)
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid != os.Getpid() {
			if syscall.Kill(pid, 0) == nil {
				if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(cmdline), "serve") {
					return nil, fmt.Errorf("a daemon (pid %d) already serves %s; stop it with `htexctl stop --run-dir %s`", pid, dir, dir)
				}
			}
		}
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write pid file: %w", err)
	}
	return func() { os.Remove(path) }, nil
}

var errHalted = errors.New("halted")
