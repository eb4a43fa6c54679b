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

	shape     pinning.Shape   // what a slot holds (Register, tasks of a size)
	base      []string        // the pool's environment
	held      map[uint64]bool // dispatched to this pool and not yet reported
	nodeCPUs  unix.CPUSet     // the pool's own CPU mask, for multi-node tasks (mpi.go)
	draining  bool
	sentDrain bool
	busy      atomic.Int32
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
		fin:   &finished{slots: len(opt.Layout.Slots)},
		held:  map[uint64]bool{}}
	// Before any slot pins a thread: the process's mask is the node's.
	if err := unix.SchedGetaffinity(0, &p.nodeCPUs); err != nil {
		p.nodeCPUs = unix.CPUSet{}
	}
	return p, nil
}

// Run serves until the interchange says shutdown, the pool drains, the
// interchange is silent past the threshold, or ctx ends (SIGTERM: drain).
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
	// A signal (the batch system taking the node back) wakes the loop at
	// once rather than at its next heartbeat.
	loopDone := make(chan struct{})
	defer close(loopDone)
	var signalledAt atomic.Int64 // Unix µs of the pool's SIGTERM, 0 = none yet
	terminated := func() time.Time {
		if us := signalledAt.Load(); us != 0 {
			return time.UnixMicro(us)
		}
		return time.Time{}
	}
	go func() {
		select {
		case <-ctx.Done():
			signalledAt.Store(time.Now().UnixMicro())
		case <-loopDone:
			return
		}
		if w, err := zmq.NewSocket(zmq.PUSH); err == nil {
			w.SetLinger(100 * time.Millisecond)
			if w.Connect(wakeEP) == nil {
				w.SendBytes(nil, zmq.DONTWAIT)
			}
			w.Close()
		}
	}()

	brd := newBoard(p.opt.Layout.Slots, p.shape, p.opt.SlotGroups)
	var wg sync.WaitGroup
	slotErr := make(chan error, len(p.opt.Layout.Slots))
	for _, s := range p.opt.Layout.Slots {
		sl := newSlot(p, s, p.base)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sl.run(brd, wakeEP); err != nil {
				slotErr <- err
			}
		}()
	}
	defer func() {
		brd.close()
		p.run.killAll()
		wg.Wait()
	}()

	send := func(m *wire.Envelope) {
		b, err := wire.Encode(m)
		if err != nil { // cannot happen within the limits of wire/limits.go
			p.log.Error("message not sent", "err", err)
			return
		}
		if _, err := sock.SendBytes(b, zmq.DONTWAIT); err != nil {
			p.log.Debug("send", "err", err)
		}
	}
	// Results stay in the outbox until the interchange has them in its
	// journal (ResultsAck); a registration carries those not acknowledged.
	out := newOutbox()
	sendResults := func(ms ...*wire.Results) {
		for _, m := range ms {
			send(&wire.Envelope{Body: &wire.Envelope_Results{Results: m}})
		}
	}
	register := func() {
		held := make([]uint64, 0, len(p.held))
		for id := range p.held {
			held = append(held, id)
		}
		unacked, rest := out.unacked(time.Now(), wire.BatchBytes)
		for _, m := range rest { // too much for one frame: send ahead
			sendResults(m)
		}
		r := &wire.Register{PoolId: p.opt.PoolID, Hostname: p.opt.Hostname, Node: p.opt.Node, BlockId: p.opt.BlockID,
			Cpus: int32(p.opt.CPUs), MemoryGb: p.opt.MemoryGB, Accelerators: p.opt.Accelerators,
			Slots: int32(len(p.opt.Layout.Slots)), Prefetch: int32(p.opt.Prefetch), Running: held, Unacked: unacked,
			SlotCpus: int32(p.shape.CPUs), SlotGpus: int32(p.shape.GPUs), SlotMemBytes: p.shape.MemBytes,
			SlotsPerGpu: int32(p.shape.SlotsPerGPU), MpiLauncher: p.opt.MPILauncher}
		if !p.opt.BlockEnd.IsZero() {
			r.BlockEndUnixMs = p.opt.BlockEnd.UnixMilli()
		}
		send(&wire.Envelope{Body: &wire.Envelope_Register{Register: r}})
	}
	register()
	p.log.Info("pool started", "pool", p.opt.PoolID, "node", p.opt.Node, "block", p.opt.BlockID,
		"slots", len(p.opt.Layout.Slots), "interchange", endpoint)

	poller := zmq.NewPoller()
	poller.Add(sock, zmq.POLLIN)
	poller.Add(wake, zmq.POLLIN)
	lastContact := time.Now()
	lastBeat := time.Now()
	var batch, taken []*wire.Result
	var placing []*wire.Task // the tasks of one Tasks message, for the board
	var holdUntil time.Time  // when held results must go out
	// Results held back in case the batch system is ending the pool (see
	// judge), in the order their tasks ended.
	var withheld []*wire.Result
	stopping := false
	for {
		select {
		case err := <-slotErr:
			return err
		default:
		}
		if ctx.Err() != nil {
			// The batch system is taking the node back: stop the tasks and
			// tell the interchange, which runs them again elsewhere.
			p.log.Info("terminated: stopping running tasks and leaving", "tasks", len(p.held))
			p.run.killAll()
			// Results of tasks that finished before the batch system
			// struck go out; those of the tasks it ended stay held, and
			// the interchange runs them again with the pool's other tasks.
			now, term := time.Now(), terminated()
			if term.IsZero() {
				term = now
			}
			taken, _ = p.fin.take(taken[:0])
			for _, r := range append(withheld, taken...) {
				if judge(r, now, term) == report {
					delete(p.held, r.TaskId)
					batch = append(batch, r)
				}
			}
			if len(batch) > 0 {
				sendResults(out.add(batch, now)...)
			}
			send(&wire.Envelope{Body: &wire.Envelope_Shutdown{Shutdown: &wire.Shutdown{Reason: "pool terminated by a signal"}}})
			sock.SetLinger(time.Second) // the goodbye leaves after Close (zsock.Flush at exit)
			return ctx.Err()
		}
		timeout := time.Until(lastBeat.Add(p.opt.Heartbeat))
		if len(withheld) > 0 {
			timeout = min(timeout, time.Until(time.UnixMicro(withheld[0].EndUnixUs).Add(signalGrace)))
		}
		if !holdUntil.IsZero() { // zmq polls in whole milliseconds: round up
			timeout = min(timeout, time.Until(holdUntil).Truncate(time.Millisecond)+time.Millisecond)
		}
		if p.draining {
			timeout = min(timeout, 200*time.Millisecond)
		} else if !p.opt.BlockEnd.IsZero() { // wake when the drain period starts
			timeout = min(timeout, time.Until(p.opt.BlockEnd.Add(-p.opt.DrainPeriod))+time.Millisecond)
		}
		if _, err := poller.Poll(max(timeout, 0)); err != nil && zmq.AsErrno(err) != zmq.Errno(4) {
			return fmt.Errorf("poll: %w", err)
		}
		now := time.Now()
		for {
			b, err := sock.RecvBytes(zmq.DONTWAIT)
			if err != nil {
				break
			}
			lastContact = now
			m, err := wire.Decode(b)
			if err != nil {
				var ve *wire.VersionError
				if errors.As(err, &ve) {
					return fmt.Errorf("%w: %v", ErrRefused, err)
				}
				p.log.Warn("dropping malformed message from the interchange", "err", err)
				continue
			}
			switch body := m.Body.(type) {
			case *wire.Envelope_Tasks:
				for _, t := range body.Tasks.Tasks {
					// argv, env and cwd as the exact bytes sent (wire/text.go)
					t.Argv, t.Env, t.Cwd = t.Args(), t.Envs(), t.Dir()
					t.ArgvRaw, t.EnvRaw, t.CwdRaw = nil, nil, nil
					if len(t.Argv) == 0 && !t.Noop {
						batch = append(batch, &wire.Result{TaskId: t.Id, ErrorKind: wire.ErrorKind_SPAWN, Error: "empty argv", ExitCode: -1})
						continue
					}
					if len(t.MpiNodes) > 0 {
						if _, err := mpiVars(p.opt.MPILauncher, t); err != nil {
							batch = append(batch, &wire.Result{TaskId: t.Id, Attempt: t.Attempt, ErrorKind: wire.ErrorKind_SPAWN,
								ExitCode: -1, Error: err.Error(), Nodes: t.MpiNodes})
							continue
						}
					}
					if t.Noop {
						us := now.UnixMicro()
						batch = append(batch, &wire.Result{TaskId: t.Id, StartUnixUs: us, EndUnixUs: us, Attempt: t.Attempt})
						continue
					}
					p.held[t.Id] = true
					p.busy.Add(1)
					p.fin.started(1)
					placing = append(placing, t)
				}
				brd.push(placing...)
				clear(placing)
				placing = placing[:0]
			case *wire.Envelope_HeartbeatReply:
			case *wire.Envelope_ResultsAck:
				out.ack(body.ResultsAck.Seqs)
			case *wire.Envelope_Reregister:
				p.log.Info("interchange asks to register again (it restarted or dropped this pool)", "held_tasks", len(p.held),
					"unacknowledged_results", out.len())
				// Held results go into the outbox, so that the registration
				// lists their tasks among the unacknowledged: a task in
				// neither list would count as lost and run again.
				if len(batch) > 0 {
					out.add(batch, now)
					batch, holdUntil = nil, time.Time{}
				}
				register()
			case *wire.Envelope_CancelTasks:
				for _, id := range body.CancelTasks.Ids {
					p.run.cancel(id)
				}
			case *wire.Envelope_Drain:
				p.log.Info("interchange asks this pool to drain")
				p.startDrain(send)
			case *wire.Envelope_Shutdown:
				p.log.Info("interchange asks this pool to shut down", "reason", body.Shutdown.Reason)
				stopping = true
			case *wire.Envelope_Refuse:
				return fmt.Errorf("%w: %s", ErrRefused, body.Refuse.Reason)
			default:
				p.log.Warn("dropping unexpected message", "type", fmt.Sprintf("%T", m.Body))
			}
		}
		for {
			if _, err := wake.RecvBytes(zmq.DONTWAIT); err != nil {
				break
			}
		}
		// Finished results go out at once, or are held for up to
		// resultCoalesce while every slot still has work (see finished).
		for {
			var slotsFed bool
			taken, slotsFed = p.fin.take(taken[:0])
			term := terminated()
			for _, r := range taken {
				switch judge(r, now, term) {
				case hold:
					withheld = append(withheld, r)
					continue
				case lose: // the task stays held, and is lost with the pool
					continue
				}
				delete(p.held, r.TaskId)
				p.busy.Add(-1)
				batch = append(batch, r)
			}
			// Held results whose grace has passed: the pool outlived
			// them, so the batch system did not end these tasks.
			for len(withheld) > 0 && ctx.Err() == nil {
				r := withheld[0]
				if judge(r, now, term) != report {
					break
				}
				withheld = withheld[1:]
				delete(p.held, r.TaskId)
				p.busy.Add(-1)
				batch = append(batch, r)
			}
			if len(batch) > 0 && holdUntil.IsZero() {
				holdUntil = now.Add(resultCoalesce)
			}
			if len(batch) > 0 && slotsFed && now.Before(holdUntil) && !stopping && !p.draining {
				p.fin.arm()
				break
			}
			if len(batch) > 0 {
				sendResults(out.add(batch, now)...)
				batch, holdUntil = nil, time.Time{}
			}
			if !p.fin.disarm() {
				break
			}
		}
		if stopping {
			return nil
		}
		if !p.opt.BlockEnd.IsZero() && !p.draining && now.After(p.opt.BlockEnd.Add(-p.opt.DrainPeriod)) {
			p.log.Info("block end is near: draining", "block_end", p.opt.BlockEnd.Format(time.RFC3339))
			p.startDrain(send)
		}
		if p.draining && len(p.held) == 0 && out.len() == 0 {
			p.log.Info("drained: exiting")
			return nil
		}
		if now.Sub(lastBeat) >= p.opt.Heartbeat {
			lastBeat = now
			held := make([]uint64, 0, len(p.held))
			for id := range p.held {
				held = append(held, id)
			}
			send(&wire.Envelope{Body: &wire.Envelope_Heartbeat{Heartbeat: &wire.Heartbeat{Running: held, Busy: p.busy.Load()}}})
			// Lost on a broken connection? Send again; duplicates are ignored.
			for _, m := range out.due(now, 2*p.opt.Heartbeat) {
				sendResults(m)
			}
		}
		if now.Sub(lastContact) > p.opt.Threshold {
			return fmt.Errorf("no word from the interchange for %s (heartbeat_threshold): exiting", now.Sub(lastContact).Round(time.Second))
		}
	}
}

func (p *Pool) startDrain(send func(*wire.Envelope)) {
	p.draining = true
	if !p.sentDrain {
		p.sentDrain = true
		send(&wire.Envelope{Body: &wire.Envelope_DrainNotice{DrainNotice: &wire.DrainNotice{}}})
	}
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
