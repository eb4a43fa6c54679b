// Package worker is the per-node worker pool (`htexctl worker`): it
// registers with the interchange, runs one slot per pinning.Slot, places
// tasks on its slots (a task of a size on several, board.go and place.go),
// fork/execs each task with its slot's CPU mask and environment (or the
// mask and variables of its placement), enforces time limits,
// batches results back, heartbeats, keeps its running tasks across a lost
// interchange, and drains before its block's end. It never imports the
// interchange: both speak the wire package.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"
	"golang.org/x/sys/unix"

	"github.com/htex/htex/internal/zsock"
	"github.com/htex/htex/launcher"
	"github.com/htex/htex/pinning"
	"github.com/htex/htex/wire"
)

// Options configure a pool.
type Options struct {
	PoolID       string
	Node         string
	Hostname     string
	BlockID      int64
	Endpoints    []string // tcp endpoints of the worker channel, probed in turn
	Security     *zsock.ClientSecurity
	Layout       *pinning.Layout
	CPUs         int
	MemoryGB     float64
	MemPerWorker float64 // executor.mem_per_worker (GB), for the slots' memory share
	Accelerators []string
	Vendor       string // the resolved accelerator vendor (pinning.ResolveVendor)
	GPUs         int    // physical GPUs of the node, as given to pinning.Plan (MPS sharing)
	SlotGroups   []int  // the socket of each slot, for placing tasks of a size; nil = unknown
	Prefetch     int
	TailBytes    int
	Heartbeat    time.Duration
	Threshold    time.Duration // interchange silent this long = lost: exit
	DrainPeriod  time.Duration
	BlockEnd     time.Time // zero = unknown
	ProbeTimeout time.Duration
	Log          *slog.Logger
	// MPILauncher is how this node starts the ranks of a multi-node task
	// (launcher.MPISrun or MPIMpiexec; "" = it cannot): the block's
	// launcher, as its batch script says (HTEX_MPI_LAUNCHER).
	MPILauncher string
}

// ErrRefused is returned when the interchange refuses the pool.
var ErrRefused = errors.New("refused by the interchange")

// Pool is one worker pool.
type Pool struct {
	opt     Options
	log     *slog.Logger
	run     *running
	paths   *pathCache
	devnull *os.File
	fin     *finished

	shape    pinning.Shape // what a slot holds (Register, tasks of a size)
	base     []string      // the pool's environment
	nodeCPUs unix.CPUSet   // the pool's own CPU mask, for multi-node tasks (mpi.go)
}

var wakeSeq atomic.Int64

// New checks the options and builds a pool.
func New(opt Options) (*Pool, error) {
	if opt.Layout == nil || len(opt.Layout.Slots) == 0 {
		return nil, errors.New("worker pool: no slots")
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if err := wire.CheckTailBytes(opt.TailBytes); err != nil {
		return nil, fmt.Errorf("worker pool: output_tail_bytes %d: %w", opt.TailBytes, err)
	}
	if opt.Heartbeat <= 0 {
		opt.Heartbeat = 10 * time.Second
	}
	if opt.Threshold <= opt.Heartbeat {
		opt.Threshold = 6 * opt.Heartbeat
	}
	if opt.ProbeTimeout <= 0 {
		opt.ProbeTimeout = 30 * time.Second
	}
	dn, err := emptyInput()
	if err != nil {
		return nil, err
	}
	if opt.MPILauncher != "" && opt.MPILauncher != launcher.MPISrun && opt.MPILauncher != launcher.MPIMpiexec {
		return nil, fmt.Errorf("worker pool: MPI launcher %q: want %s, %s or none", opt.MPILauncher, launcher.MPISrun, launcher.MPIMpiexec)
	}
	shape := opt.Layout.Shape(pinning.Node{CPUs: pinning.CPURange(max(opt.CPUs, 1)), MemoryGB: opt.MemoryGB}, pinning.Options{MemPerWorker: opt.MemPerWorker, GPUs: opt.GPUs})
	p := &Pool{opt: opt, log: opt.Log, run: newRunning(), devnull: dn, shape: shape, base: environ(),
		paths: &pathCache{path: os.Getenv("PATH"), m: map[string]string{}},
		fin:   &finished{slots: len(opt.Layout.Slots)}}
	// Before any slot pins a thread: the process's mask is the node's.
	if err := unix.SchedGetaffinity(0, &p.nodeCPUs); err != nil {
		p.nodeCPUs = unix.CPUSet{}
	}
	return p, nil
}

// Run serves until the interchange says shutdown, the pool drains, the
// interchange is silent past the threshold, or ctx ends (SIGTERM: drain).
// It is the driver of the loop's decisions (loop.go): it owns the sockets,
// the slots and the outbox, and does what the decisions say.
func (p *Pool) Run(ctx context.Context) error {
	defer p.devnull.Close()
	endpoint, err := p.probe(ctx)
	if err != nil {
		return err
	}
	sock, err := zsock.Dealer([]string{endpoint}, p.opt.PoolID, false, p.opt.Security)
	if err != nil {
		return fmt.Errorf("connect %s: %w", endpoint, err)
	}
	defer sock.Close()
	wakeEP := fmt.Sprintf("inproc://htex-pool-wake-%d", wakeSeq.Add(1))
	wake, err := zmq.NewSocket(zmq.PULL)
	if err != nil {
		return fmt.Errorf("wake socket: %w", err)
	}
	wake.SetLinger(0)
	if err := wake.Bind(wakeEP); err != nil {
		return err
	}
	defer wake.Close()
	loopDone := make(chan struct{})
	defer close(loopDone)
	s := &session{Pool: p, sock: sock, wake: wake, out: newOutbox(), loop: newLoop(p.opt, time.Now())}
	go s.watchSignal(ctx, wakeEP, loopDone)

	s.brd = newBoard(p.opt.Layout.Slots, p.shape, p.opt.SlotGroups)
	var wg sync.WaitGroup
	slotErr := make(chan error, len(p.opt.Layout.Slots))
	for _, sp := range p.opt.Layout.Slots {
		sl := newSlot(p, sp, p.base)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sl.run(s.brd, wakeEP); err != nil {
				slotErr <- err
			}
		}()
	}
	defer func() {
		s.brd.close()
		p.run.killAll()
		wg.Wait()
	}()
	s.register()
	p.log.Info("pool started", "pool", p.opt.PoolID, "node", p.opt.Node, "block", p.opt.BlockID,
		"slots", len(p.opt.Layout.Slots), "interchange", endpoint)
	return s.serve(ctx, slotErr)
}

// session is one run of the pool's loop against an interchange: the I/O
// around the loop's decisions.
type session struct {
	*Pool
	sock, wake *zmq.Socket
	brd        *board
	out        *outbox // results until the interchange has them in its journal
	loop       *loop
	taken      []*wire.Result // reused by take
	signalled  atomic.Int64   // Unix µs of the pool's SIGTERM, 0 = none yet
}

// watchSignal notes when ctx ends (the batch system taking the node back)
// and wakes the loop at once rather than at its next heartbeat. It ends
// with ctx or with the loop (done).
func (s *session) watchSignal(ctx context.Context, wakeEP string, done <-chan struct{}) {
	select {
	case <-ctx.Done():
		s.signalled.Store(time.Now().UnixMicro())
	case <-done:
		return
	}
	if w, err := zmq.NewSocket(zmq.PUSH); err == nil {
		w.SetLinger(100 * time.Millisecond)
		if w.Connect(wakeEP) == nil {
			w.SendBytes(nil, zmq.DONTWAIT)
		}
		w.Close()
	}
}

// terminated is when the pool got its SIGTERM (zero while it has not).
func (s *session) terminated() time.Time {
	if us := s.signalled.Load(); us != 0 {
		return time.UnixMicro(us)
	}
	return time.Time{}
}

func (s *session) send(m *wire.Envelope) {
	b, err := wire.Encode(m)
	if err != nil { // cannot happen within the limits of wire/limits.go
		s.log.Error("message not sent", "err", err)
		return
	}
	if _, err := s.sock.SendBytes(b, zmq.DONTWAIT); err != nil {
		s.log.Debug("send", "err", err)
	}
}

func (s *session) sendResults(ms ...*wire.Results) {
	for _, m := range ms {
		s.send(&wire.Envelope{Body: &wire.Envelope_Results{Results: m}})
	}
}

// register introduces the pool, with the tasks it holds and the results
// not yet acknowledged (after a daemon restart, these decide what ran).
func (s *session) register() {
	unacked, rest := s.out.unacked(time.Now(), wire.BatchBytes)
	for _, m := range rest { // too much for one frame: send ahead
		s.sendResults(m)
	}
	o := s.opt
	r := &wire.Register{PoolId: o.PoolID, Hostname: o.Hostname, Node: o.Node, BlockId: o.BlockID,
		Cpus: int32(o.CPUs), MemoryGb: o.MemoryGB, Accelerators: o.Accelerators,
		Slots: int32(len(o.Layout.Slots)), Prefetch: int32(o.Prefetch), Running: s.loop.heldIDs(), Unacked: unacked,
		SlotCpus: int32(s.shape.CPUs), SlotGpus: int32(s.shape.GPUs), SlotMemBytes: s.shape.MemBytes,
		SlotsPerGpu: int32(s.shape.SlotsPerGPU), MpiLauncher: o.MPILauncher}
	if !o.BlockEnd.IsZero() {
		r.BlockEndUnixMs = o.BlockEnd.UnixMilli()
	}
	s.send(&wire.Envelope{Body: &wire.Envelope_Register{Register: r}})
}

// serve is the loop: wait, receive, report results, and do what time
// calls for, until one of the loop's decisions or a signal ends it.
func (s *session) serve(ctx context.Context, slotErr <-chan error) error {
	poller := zmq.NewPoller()
	poller.Add(s.sock, zmq.POLLIN)
	poller.Add(s.wake, zmq.POLLIN)
	l := s.loop
	for {
		select {
		case err := <-slotErr:
			return err
		default:
		}
		if ctx.Err() != nil {
			return s.leave(ctx.Err())
		}
		if _, err := poller.Poll(l.pollTimeout(time.Now())); err != nil && zmq.AsErrno(err) != zmq.Errno(4) {
			return fmt.Errorf("poll: %w", err)
		}
		now := time.Now()
		if err := l.lost(now); err != nil {
			return err
		}
		if err := s.receive(now); err != nil {
			return err
		}
		for {
			if _, err := s.wake.RecvBytes(zmq.DONTWAIT); err != nil {
				break
			}
		}
		s.report(now)
		t := l.tick(now, s.out.len() == 0)
		if t.drain {
			s.log.Info("block end is near: draining", "block_end", s.opt.BlockEnd.Format(time.RFC3339))
		}
		if t.notice {
			s.sendDrainNotice()
		}
		if t.beat {
			held := l.heldIDs()
			s.send(&wire.Envelope{Body: &wire.Envelope_Heartbeat{Heartbeat: &wire.Heartbeat{Running: held, Busy: int32(len(held))}}})
			// Lost on a broken connection? Send again; duplicates are ignored.
			s.sendResults(s.out.due(now, 2*s.opt.Heartbeat)...)
		}
		if t.exit {
			if t.err == nil && l.draining && !l.stopping {
				s.log.Info("drained: exiting")
			}
			return t.err
		}
	}
}

func (s *session) sendDrainNotice() {
	s.send(&wire.Envelope{Body: &wire.Envelope_DrainNotice{DrainNotice: &wire.DrainNotice{}}})
}

// receive handles every message waiting on the socket.
func (s *session) receive(now time.Time) error {
	l := s.loop
	for {
		b, err := s.sock.RecvBytes(zmq.DONTWAIT)
		if err != nil {
			return nil
		}
		l.heard(now)
		m, err := wire.Decode(b)
		if err != nil {
			var ve *wire.VersionError
			if errors.As(err, &ve) {
				return fmt.Errorf("%w: %v", ErrRefused, err)
			}
			s.log.Warn("dropping malformed message from the interchange", "err", err)
			continue
		}
		switch body := m.Body.(type) {
		case *wire.Envelope_Tasks:
			if place := l.admit(now, body.Tasks.Tasks); len(place) > 0 {
				s.fin.started(len(place))
				s.brd.push(place...)
			}
		case *wire.Envelope_HeartbeatReply:
		case *wire.Envelope_ResultsAck:
			s.out.ack(body.ResultsAck.Seqs)
		case *wire.Envelope_Reregister:
			s.log.Info("interchange asks to register again (it restarted or dropped this pool)", "held_tasks", len(l.held),
				"unacknowledged_results", s.out.len())
			// Results not yet sent go into the outbox, so that the
			// registration lists their tasks among the unacknowledged: a
			// task in neither list would count as lost and run again.
			if b := l.takeBatch(); len(b) > 0 {
				s.out.add(b, now)
			}
			s.register()
		case *wire.Envelope_CancelTasks:
			for _, id := range body.CancelTasks.Ids {
				s.run.cancel(id)
			}
		case *wire.Envelope_Drain:
			s.log.Info("interchange asks this pool to drain")
			if l.startDrain() {
				s.sendDrainNotice()
			}
		case *wire.Envelope_Shutdown:
			s.log.Info("interchange asks this pool to shut down", "reason", body.Shutdown.Reason)
			l.stopping = true
		case *wire.Envelope_Refuse:
			return fmt.Errorf("%w: %s", ErrRefused, body.Refuse.Reason)
		default:
			s.log.Warn("dropping unexpected message", "type", fmt.Sprintf("%T", m.Body))
		}
	}
}

// report takes the slots' results, judges them and sends the batch at
// once, or holds it for up to resultCoalesce while every slot has work
// (see finished: armed, the slots do not wake the loop for each result).
func (s *session) report(now time.Time) {
	l := s.loop
	for {
		var slotsFed bool
		s.taken, slotsFed = s.fin.take(s.taken[:0])
		l.sort(now, s.terminated(), s.taken)
		switch l.coalesce(now, slotsFed) {
		case holdBatch:
			s.fin.arm()
			return
		case sendBatch:
			s.sendResults(s.out.add(l.takeBatch(), now)...)
		}
		if !s.fin.disarm() {
			return
		}
	}
}

// leave stops the running tasks as the batch system takes the node back,
// reports the results of tasks that finished before it struck, and says
// goodbye; the interchange runs the pool's other tasks again elsewhere.
func (s *session) leave(cause error) error {
	s.log.Info("terminated: stopping running tasks and leaving", "tasks", len(s.loop.held))
	s.run.killAll()
	now, term := time.Now(), s.terminated()
	if term.IsZero() {
		term = now
	}
	s.taken, _ = s.fin.take(s.taken[:0])
	if b := s.loop.leave(now, term, s.taken); len(b) > 0 {
		s.sendResults(s.out.add(b, now)...)
	}
	s.send(&wire.Envelope{Body: &wire.Envelope_Shutdown{Shutdown: &wire.Shutdown{Reason: "pool terminated by a signal"}}})
	s.sock.SetLinger(time.Second) // the goodbye leaves after Close (zsock.Flush at exit)
	return cause
}

// probe finds the first endpoint whose interchange answers, as HTEx does.
func (p *Pool) probe(ctx context.Context) (string, error) {
	if len(p.opt.Endpoints) == 0 {
		return "", errors.New("no interchange address to connect to")
	}
	var socks []*zmq.Socket
	var hss []*zsock.Handshakes
	defer func() {
		for i, s := range socks {
			hss[i].Close()
			s.Close()
		}
	}()
	poller := zmq.NewPoller()
	hb := wire.MustEncode(&wire.Envelope{Body: &wire.Envelope_Heartbeat{Heartbeat: &wire.Heartbeat{}}})
	for _, ep := range p.opt.Endpoints {
		s, hs, err := zsock.WatchedDealer([]string{ep}, "", false, p.opt.Security)
		if err != nil {
			return "", err
		}
		socks, hss = append(socks, s), append(hss, hs)
		s.SendBytes(hb, zmq.DONTWAIT)
		poller.Add(s, zmq.POLLIN)
	}
	// rejected: an interchange answered but refused the handshake, and no
	// other address has done better for a moment (or until the deadline).
	rejected := func(grace time.Duration) error {
		var failed *zsock.HandshakeError
		for _, hs := range hss {
			if hs.Succeeded() {
				return nil
			}
			if f := hs.Failed(grace); f != nil && (failed == nil || f.Refused) {
				failed = f
			}
		}
		if failed == nil {
			return nil
		}
		if failed.Refused {
			return fmt.Errorf("%w: %w; the daemon admits only its own pool key on the worker channel", ErrRefused, failed)
		}
		return fmt.Errorf("%w: %w", ErrRefused, failed)
	}
	deadline := time.Now().Add(p.opt.ProbeTimeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if err := rejected(time.Second); err != nil {
			return "", err
		}
		polled, err := poller.Poll(200 * time.Millisecond)
		if err != nil && zmq.AsErrno(err) != zmq.Errno(4) {
			return "", err
		}
		for _, pl := range polled {
			for i, s := range socks {
				if s == pl.Socket {
					return p.opt.Endpoints[i], nil
				}
			}
		}
	}
	if err := rejected(0); err != nil {
		return "", err
	}
	return "", fmt.Errorf("no interchange answered within %s; tried %v (check the daemon runs, the addresses, the worker port and firewalls)",
		p.opt.ProbeTimeout, p.opt.Endpoints)
}
