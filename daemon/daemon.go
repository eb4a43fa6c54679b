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
	"time"

	"github.com/htex/htex/config"
	"github.com/htex/htex/interchange"
	"github.com/htex/htex/internal/execx"
	"github.com/htex/htex/internal/zsock"
	"github.com/htex/htex/journal"
	"github.com/htex/htex/metrics"
	"github.com/htex/htex/pinning/detect"
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

// daemon is one running `serve`: what open made, in the order it made it.
type daemon struct {
	opt    Options
	cfg    *config.Config
	log    *slog.Logger
	lock   *os.File // the run directory's kernel lock (lock.go)
	me     lease
	jr     *journal.Journal
	ix     *interchange.Interchange
	blocks *blockLoop
	conn   *rundir.Connection
	addrs  []string // advertised to pools and clients, numeric (executor.address resolved)

	ixDone   chan error
	stopIx   context.CancelFunc
	loopDone chan struct{}
	stopLoop context.CancelFunc
	connDone chan struct{}
	closers  []func() // undone in reverse order by close
	lost     bool     // another daemon took the lease: leave its things alone
}

// Run serves until ctx ends, a client asks to stop, or the interchange
// fails. Its order is fixed: open (run directory, ownership, journal,
// interchange, adoption, connection file), serve, then shutdown (stop the
// block loop, let running tasks finish within StopGrace, tell pools to
// exit, cancel blocks, stop the interchange, release the run directory).
// Shutdown takes at most StopGrace plus a few bounded steps, whatever state
// the interchange is in.
func Run(ctx context.Context, opt Options) error {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.StopGrace == 0 {
		opt.StopGrace = 30 * time.Second
	}
	d := &daemon{opt: opt, cfg: opt.Config, log: opt.Log}
	defer d.close()
	if err := d.open(ctx); err != nil {
		return err
	}
	runErr := d.serve(ctx)
	return d.shutdown(runErr)
}

func (d *daemon) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
}

func (d *daemon) onClose(f func()) { d.closers = append(d.closers, f) }

// open makes everything serve needs; what it made is undone by close.
func (d *daemon) open(ctx context.Context) error {
	if err := rundir.Create(d.opt.RunDir); err != nil {
		return err
	}
	if err := d.own(); err != nil {
		return err
	}
	serverKeys, warning, err := d.security()
	if err != nil {
		return err
	}
	if err := d.openInterchange(serverKeys, warning); err != nil {
		return err
	}
	if err := d.ix.Restore(); err != nil {
		return err
	}
	d.jr.SetMeta("client_port", strconv.Itoa(d.ix.ClientPort()))
	d.jr.SetMeta("worker_port", strconv.Itoa(d.ix.WorkerPort()))
	if err := d.blocks.adopt(ctx); err != nil {
		return err
	}
	d.ix.ForgetBlocks(d.blocks.gone)
	return d.publish(serverKeys)
}

// own takes the run directory: the kernel lock, then the journal and its
// lease (lock.go).
func (d *daemon) own() error {
	dir := d.opt.RunDir
	f, locked, err := lockRunDir(dir)
	if errors.Is(err, ErrHeld) {
		return fmt.Errorf("%s: %w: %s holds its lock; stop it with `htexctl stop --run-dir %s`", dir, ErrHeld, holderOf(dir), dir)
	}
	if err != nil {
		return err
	}
	d.lock = f
	d.onClose(func() { f.Close() })
	if !locked {
		d.log.Warn("the run directory's file system refuses fcntl locks: only the journal's lease keeps a second daemon out", "dir", dir)
	}
	jr, err := journal.Open(filepath.Join(dir, rundir.JournalFile))
	if err != nil {
		return err
	}
	d.jr = jr
	d.onClose(func() { jr.Close() })
	d.me = newLease()
	if err := takeLease(jr, dir, d.me, locked, d.log.Info); err != nil {
		return err
	}
	d.onClose(func() {
		if !d.lost {
			releaseLease(jr, d.me)
		}
	})
	writePidFile(dir)
	d.onClose(func() {
		if !d.lost {
			os.Remove(filepath.Join(dir, rundir.PidFile))
		}
	})
	if d.opt.NoJournal {
		jr.DiscardWrites()
	}
	return nil
}

// security loads the keys and starts the ZAP handler, or warns that
// encryption is off.
func (d *daemon) security() (rundir.KeyPair, string, error) {
	var kp rundir.KeyPair
	dir := d.opt.RunDir
	if !d.cfg.Executor.IsEncrypted() {
		w := "encryption is off (encrypted = false): anyone who can reach the ports can submit tasks or pose as a pool"
		d.log.Warn(w)
		return kp, w, nil
	}
	if err := rundir.EnsureKeys(dir); err != nil {
		return kp, "", err
	}
	kp, err := rundir.LoadKeyPair(dir, rundir.Server)
	if err != nil {
		return kp, "", err
	}
	cp, err := rundir.LoadPublicKey(dir, rundir.Client)
	if err != nil {
		return kp, "", err
	}
	pp, err := rundir.LoadPublicKey(dir, rundir.Pool)
	if err != nil {
		return kp, "", err
	}
	return kp, "", zsock.StartAuth(cp, pp)
}

// openInterchange binds the ports of the previous run when it can (pools
// and clients of the earlier daemon reconnect), else new ones.
func (d *daemon) openInterchange(serverKeys rundir.KeyPair, warning string) error {
	cfg := d.cfg
	clientPort, workerPort := cfg.Executor.ClientPort, cfg.Executor.WorkerPort
	if clientPort == 0 {
		clientPort = metaInt(d.jr, "client_port")
	}
	if workerPort == 0 { // with worker_port_range: the previous port if it is in the range
		prev, r := metaInt(d.jr, "worker_port"), cfg.Executor.WorkerPortRange
		if r == [2]int{} || (prev >= r[0] && prev <= r[1]) {
			workerPort = prev
		}
	}
	prov, err := newProvider(cfg)
	if err != nil {
		return err
	}
	d.blocks = newBlockLoop(cfg, d.opt, prov, d.jr, d.log)
	addrs, err := advertised(context.Background(), cfg)
	if err != nil {
		return err
	}
	hosts := bindHosts(addrs)
	if err := checkPlaintext(cfg.Executor.IsEncrypted(), cfg.Executor.AllowPlaintextNetwork, hosts); err != nil {
		return err
	}
	d.addrs = addrs
	shape := configPoolShape(cfg, detect.Node)
	opts := func(cp, wp int) interchange.Options {
		return interchange.Options{
			Label: cfg.Executor.Label, RunDir: d.opt.RunDir, Provider: prov.Name(), BindHosts: hosts,
			ClientPort: cp, WorkerPort: wp, WorkerPortRange: cfg.Executor.WorkerPortRange,
			Encrypted: cfg.Executor.IsEncrypted(), ServerSecret: serverKeys.Secret,
			HeartbeatPeriod: cfg.Executor.HeartbeatPeriod.D(), HeartbeatThreshold: cfg.Executor.HeartbeatThreshold.D(),
			DefaultRetries: retriesDefault(cfg), Journal: d.jr, Log: d.log, Blocks: d.blocks, Warning: warning,
			DrainPeriod: cfg.Executor.DrainPeriod.D(), Observer: observer(d.opt.Metrics),
			MPI:       interchange.MPISettingsFor(cfg.Provider.NodesPerBlock, cfg.Provider.Launcher),
			PoolShape: shape,
		}
	}
	ix, err := interchange.New(opts(clientPort, workerPort))
	if err != nil && (clientPort != cfg.Executor.ClientPort || workerPort != cfg.Executor.WorkerPort) {
		d.log.Warn("could not bind the ports of the previous run; taking new ones (pools of that run will not find this daemon)", "err", err)
		ix, err = interchange.New(opts(cfg.Executor.ClientPort, cfg.Executor.WorkerPort))
	}
	if err != nil {
		return err
	}
	d.ix = ix
	d.blocks.ix = ix
	d.opt.Metrics.SetSource(func() metrics.Snapshot { return metricsSnapshot(ix.Stats(), d.blocks.BlockStatuses()) })
	return nil
}

// publish writes the connection file: from here on clients and pools find
// this daemon.
func (d *daemon) publish(serverKeys rundir.KeyPair) error {
	cfg := d.cfg
	host, _ := os.Hostname()
	d.conn = &rundir.Connection{
		ProtocolVersion: wire.Version, Label: cfg.Executor.Label, Pid: os.Getpid(), Hostname: host,
		Addresses: d.addrs, ClientPort: d.ix.ClientPort(), WorkerPort: d.ix.WorkerPort(), Encrypted: cfg.Executor.IsEncrypted(),
		ServerPublicKey: serverKeys.Public, StartedAt: time.Now().UTC(), Pool: poolSettings(cfg),
	}
	if err := rundir.WriteConnection(d.opt.RunDir, d.conn); err != nil {
		return err
	}
	d.onClose(func() {
		if !d.lost { // else it is the new owner's
			rundir.RemoveConnection(d.opt.RunDir)
		}
	})
	return nil
}

// serve starts the interchange, the block loop and the lease keeper, and
// returns when the daemon must stop: a signal (ctx), a client's stop, the
// interchange ending on its own (its error), or a lost lease.
func (d *daemon) serve(ctx context.Context) error {
	d.log.Info("daemon ready", "run_dir", d.opt.RunDir, "client_port", d.conn.ClientPort, "worker_port", d.conn.WorkerPort,
		"addresses", strings.Join(d.conn.Addresses, ","), "encrypted", d.conn.Encrypted, "provider", d.blocks.prov.Name())
	if d.opt.Ready != nil {
		d.opt.Ready(d.conn)
	}
	var ixCtx, loopCtx context.Context
	ixCtx, d.stopIx = context.WithCancel(context.Background())
	d.ixDone = make(chan error, 1)
	go func() { d.ixDone <- d.ix.Run(ixCtx) }()
	loopCtx, d.stopLoop = context.WithCancel(context.Background())
	d.loopDone = make(chan struct{})
	go func() { defer close(d.loopDone); d.blocks.run(loopCtx) }()
	leaseCtx, stopLease := context.WithCancel(context.Background())
	leaseDone := make(chan struct{})
	d.onClose(func() { stopLease(); <-leaseDone })
	lost := make(chan string, 1)
	go func() {
		defer close(leaseDone)
		keepLease(leaseCtx, d.jr, d.me, func(why string) { lost <- why }, d.log.Warn)
	}()

	// A deleted connection file is written again while the daemon serves.
	d.connDone = make(chan struct{})
	go func() { defer close(d.connDone); keepConnection(loopCtx, d.opt.RunDir, d.conn, d.log) }()

	select {
	case <-ctx.Done():
		d.log.Info("signal received: stopping")
	case <-d.ix.StopRequested():
	case why := <-lost:
		// Another daemon owns the run directory now, and with it the
		// blocks, pools and connection file: leave them to it.
		d.lost = true
		d.jr.DiscardWrites() // the journal is the new owner's to write
		d.log.Error("lost the run directory: stopping without touching its blocks", "why", why)
		return fmt.Errorf("%s: %w: %s", d.opt.RunDir, ErrHeld, why)
	case err := <-d.ixDone:
		d.ixDone <- err
		d.log.Error("interchange stopped", "err", err)
		return err
	}
	return nil
}

// shutdown stops in the written order. Each step is bounded; a step that
// needs the interchange's loop gets interchange.ErrStopped at once when the
// loop has ended.
func (d *daemon) shutdown(runErr error) error {
	d.stopLoop()
	<-d.loopDone
	<-d.connDone
	if runErr == nil {
		d.drainTasks()
	}
	if !d.lost {
		d.shutdownPools()
		d.cancelBlocks()
	}
	if err := d.stopInterchange(); err != nil && runErr == nil {
		runErr = err
	}
	d.blocks.wait()
	d.log.Info("daemon stopped")
	return runErr
}

// drainTasks stops dispatch and lets running tasks finish within
// StopGrace. Queued tasks stay in the journal for a restart.
func (d *daemon) drainTasks() {
	grace, cancel := context.WithTimeout(context.Background(), d.opt.StopGrace)
	defer cancel()
	if d.ix.Do(grace, func(st *interchange.State) { st.StopDispatch() }) != nil {
		return
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		n := -1
		if d.ix.Do(grace, func(st *interchange.State) { n = st.Running() }) != nil || n == 0 {
			return
		}
		select {
		case <-grace.Done():
			return
		case <-tick.C:
		}
	}
}

// shutdownPools tells every pool to exit; the worker socket's linger
// (interchange.Run) lets the messages leave before it closes.
func (d *daemon) shutdownPools() {
	ctx, cancel := context.WithTimeout(context.Background(), stepLimit)
	defer cancel()
	d.ix.Do(ctx, func(st *interchange.State) { st.ShutdownPools("daemon stopping") })
}

// cancelBlocks cancels every block of this daemon at its provider.
func (d *daemon) cancelBlocks() {
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.Provider.CmdTimeout.D()+stepLimit)
	defer cancel()
	d.blocks.cancelAll(ctx)
}

// stopInterchange ends the loop: it writes what it can of the journal and
// closes the sockets.
func (d *daemon) stopInterchange() error {
	d.stopIx()
	return <-d.ixDone
}

// stepLimit bounds each shutdown step that waits on the interchange.
const stepLimit = 5 * time.Second

// retriesDefault is executor.retries, 0 included: the config has applied
// the default when the key was absent.
func retriesDefault(cfg *config.Config) int { return cfg.Executor.Retries }

func metaInt(j *journal.Journal, key string) int {
	v, err := j.Meta(key)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(v)
	return n
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
