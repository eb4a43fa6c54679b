// Package interchange is the broker of the daemon: the queue of tasks, the
// registry of worker pools, dispatch by free capacity, heartbeats, retries
// of tasks of lost pools, and the ordering of journal writes. Its decisions
// are a pure core (core.go: events in, actions out, no socket, clock or
// SQL), tested by the scenarios under testdata/scenarios; this file is the
// driver: one goroutine (Run) owns the client and worker ROUTER sockets
// and the core, a writer goroutine commits journal batches and reader
// goroutines run journal reads. Other goroutines talk to the loop through
// Do and read the Stats snapshot. It never starts blocks: that is the
// scaler's job.
package interchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/htex/htex/internal/zsock"
	"github.com/htex/htex/journal"
	"github.com/htex/htex/wire"
)

// BlockSource gives the status reply the daemon's view of blocks.
type BlockSource interface {
	BlockStatuses() []*wire.BlockStatus
	ScalerSummary() string
}

// PoolWatcher is implemented by a BlockSource that wants to hear, as it
// happens, that a pool of a block registered: a block whose pools register
// and vanish between two samples of Stats has still started. It is called
// on the interchange's loop and must not block on it (no Do).
type PoolWatcher interface {
	PoolRegistered(blockID int64)
}

// Observer hears of what the daemon's metrics count (package metrics
// implements it). TaskDispatched and TaskFinished are called on the loop,
// JournalCommitted on the journal writer's goroutine; none may block.
type Observer interface {
	// TaskDispatched: an attempt went to a pool, d after the submission.
	TaskDispatched(d time.Duration)
	// TaskFinished: a task's final result was committed (state
	// succeeded, failed or cancelled), sinceSubmit after its submission.
	TaskFinished(state, errorKind string, sinceSubmit time.Duration)
	// JournalCommitted: one batch of rows was written in took.
	JournalCommitted(took time.Duration, rows int)
}

// Options configure an interchange.
type Options struct {
	Label              string
	RunDir             string
	Provider           string
	BindHost           string   // "*" = every interface
	BindHosts          []string // when set, every one of them instead of BindHost
	ClientPort         int
	WorkerPort         int
	WorkerPortRange    [2]int
	Encrypted          bool
	ServerSecret       string
	HeartbeatPeriod    time.Duration
	HeartbeatThreshold time.Duration
	DefaultRetries     int
	Journal            *journal.Journal
	Log                *slog.Logger
	Blocks             BlockSource
	Warning            string   // shown by status (e.g. "encryption is off")
	Observer           Observer // metrics; nil = none

	// DrainPeriod (executor.drain_period): a pool whose block ends within
	// it gets no new tasks. 0 = only when the pool says it drains.
	DrainPeriod time.Duration

	// MPI (provider.nodes_per_block and launcher, MPISettingsFor) bounds
	// the multi-node tasks submit accepts; zero = none.
	MPI MPISettings
	// PoolShape is the shape of the pools of the config, when known before
	// they register: a task of a size that none of them could run is
	// refused at submit. Zero = unknown.
	PoolShape PoolShape
}

// Stats is a snapshot for the scaler, refreshed by the loop.
type Stats struct {
	At      time.Time
	Queued  int
	Running int
	// ExtraSlots: the slots beyond one a task that tasks of a size hold
	// (running) or will take on a pool of the config's shape (queued), so
	// that Queued + Running + ExtraSlots is the work in slots.
	ExtraSlots int
	Pools      []PoolStat
}

// PoolStat is one registered pool.
type PoolStat struct {
	ID        string
	BlockID   int64
	Node      string
	Slots     int
	Busy      int
	Done      int       // results of its tasks received: the pool has been useful
	IdleSince time.Time // zero when busy
	Draining  bool
	BlockEnd  time.Time
}

// Interchange is the broker. Create with New, run with Run.
type Interchange struct {
	opt        Options
	log        *slog.Logger
	clientSock *zmq.Socket
	workerSock *zmq.Socket
	wakeRecv   *zmq.Socket
	wakeMu     sync.Mutex
	wakeSend   *zmq.Socket
	clientPort int
	workerPort int

	cmds    chan func()
	stop    chan struct{}
	once    sync.Once
	stopped chan struct{} // closed when Run returns

	statsMu sync.Mutex
	stats   Stats

	st *state
}

var wakeSeq struct {
	sync.Mutex
	n int
}

// New binds the sockets. The ports are known when it returns.
func New(opt Options) (*Interchange, error) {
	if err := wire.CheckRetries(opt.DefaultRetries); err != nil {
		return nil, fmt.Errorf("default retries %d: %w", opt.DefaultRetries, err)
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.BindHost == "" {
		opt.BindHost = "*"
	}
	ix := &Interchange{opt: opt, log: opt.Log, cmds: make(chan func(), 64), stop: make(chan struct{}),
		stopped: make(chan struct{})}
	var csec, wsec *zsock.ServerSecurity
	if opt.Encrypted {
		csec = &zsock.ServerSecurity{Secret: opt.ServerSecret, Domain: zsock.DomainClient}
		wsec = &zsock.ServerSecurity{Secret: opt.ServerSecret, Domain: zsock.DomainPool}
	}
	var err error
	hosts := opt.BindHosts
	if len(hosts) == 0 {
		hosts = []string{opt.BindHost}
	}
	ix.clientSock, ix.clientPort, err = zsock.Router(hosts, opt.ClientPort, [2]int{}, csec)
	if err != nil {
		return nil, fmt.Errorf("client channel: %w", err)
	}
	ix.workerSock, ix.workerPort, err = zsock.Router(hosts, opt.WorkerPort, opt.WorkerPortRange, wsec)
	if err != nil {
		ix.clientSock.Close()
		return nil, fmt.Errorf("worker channel: %w", err)
	}
	wakeSeq.Lock()
	wakeSeq.n++
	ep := fmt.Sprintf("inproc://htex-wake-%d", wakeSeq.n)
	wakeSeq.Unlock()
	if ix.wakeRecv, err = zmq.NewSocket(zmq.PULL); err != nil {
		ix.closeSockets()
		return nil, fmt.Errorf("wake socket: %w", err)
	}
	ix.wakeRecv.SetLinger(0)
	if err := ix.wakeRecv.Bind(ep); err != nil {
		ix.closeSockets()
		return nil, fmt.Errorf("wake socket: %w", err)
	}
	if ix.wakeSend, err = zmq.NewSocket(zmq.PUSH); err != nil {
		ix.closeSockets()
		return nil, fmt.Errorf("wake socket: %w", err)
	}
	ix.wakeSend.SetLinger(0)
	ix.wakeSend.SetSndhwm(1)
	if err := ix.wakeSend.Connect(ep); err != nil {
		ix.closeSockets()
		return nil, fmt.Errorf("wake socket: %w", err)
	}
	ix.st = newState(configOf(opt), opt.Log)
	return ix, nil
}

// closeLinger is how long replies and shutdown messages still queued when
// the loop ends keep being sent after their socket closes.
const closeLinger = time.Second

func (ix *Interchange) closeSockets() {
	for _, s := range []*zmq.Socket{ix.clientSock, ix.workerSock} {
		if s != nil {
			s.SetLinger(closeLinger)
		}
	}
	for _, s := range []*zmq.Socket{ix.clientSock, ix.workerSock, ix.wakeRecv, ix.wakeSend} {
		if s != nil {
			s.Close()
		}
	}
}

// ClientPort is the bound client channel port.
func (ix *Interchange) ClientPort() int { return ix.clientPort }

// WorkerPort is the bound worker channel port.
func (ix *Interchange) WorkerPort() int { return ix.workerPort }

// StopRequested is closed when a client asked the daemon to stop.
func (ix *Interchange) StopRequested() <-chan struct{} { return ix.stop }

// Stats returns the latest snapshot.
func (ix *Interchange) Stats() Stats {
	ix.statsMu.Lock()
	defer ix.statsMu.Unlock()
	return ix.stats
}

// wake interrupts the loop's poll. Safe from any goroutine.
func (ix *Interchange) wake() {
	ix.wakeMu.Lock()
	ix.wakeSend.SendBytes(nil, zmq.DONTWAIT)
	ix.wakeMu.Unlock()
}

// ErrStopped is returned by Do once Run has returned.
var ErrStopped = errors.New("interchange: stopped")

// Do runs f on the loop goroutine and waits for it, for ctx, or for the
// loop to end (ErrStopped): it never blocks on a loop that is gone.
func (ix *Interchange) Do(ctx context.Context, f func(*State)) error {
	done := make(chan struct{})
	select {
	case <-ix.stopped:
		return ErrStopped
	default:
	}
	select {
	case ix.cmds <- func() { f(&State{s: ix.st}); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-ix.stopped:
		return ErrStopped
	}
	ix.wake()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-ix.stopped:
		return ErrStopped
	}
}

// Stopped is closed when Run has returned.
func (ix *Interchange) Stopped() <-chan struct{} { return ix.stopped }

// Restore loads unfinished tasks and job counters from the journal before
// Run (daemon restart).
func (ix *Interchange) Restore() error {
	j := ix.opt.Journal
	var d restoreData
	var err error
	if d.maxJob, d.maxTask, _, err = j.MaxIDs(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if d.counts, err = j.JobCounts(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if d.unfinished, d.attempts, err = j.UnfinishedHeads(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if d.pools, err = j.Pools(true); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	ix.st.restore(d, time.Now())
	return nil
}

// ForgetBlocks tells a restored interchange which blocks of the previous
// daemon ended while no daemon ran: their pools will not register again.
// Call it after Restore, before Run. (Pools of blocks that end later are
// forgotten through State.BlockEnded.)
func (ix *Interchange) ForgetBlocks(blocks []int64) {
	ix.st.forgetBlocks(blocks, time.Now())
}

// Run serves until ctx is cancelled or a fatal journal error occurs. It is
// the driver of the core (core.go): it turns socket frames, the clock,
// commands and journal commits into events, and carries out the actions.
func (ix *Interchange) Run(ctx context.Context) error {
	defer close(ix.stopped)
	defer ix.closeSockets()
	w := newWriter(ix.opt.Journal, ix.wake)
	w.obs = ix.opt.Observer
	go w.run()
	defer w.close()
	rd := newReader(ix.opt.Journal, ix.wake)
	defer rd.close()

	poller := zmq.NewPoller()
	poller.Add(ix.clientSock, zmq.POLLIN)
	poller.Add(ix.workerSock, zmq.POLLIN)
	poller.Add(ix.wakeRecv, zmq.POLLIN)
	st := ix.st
	for {
		if err := ctx.Err(); err != nil {
			ix.flushJournalSync(w)
			return nil
		}
		if _, err := poller.Poll(st.nextWake(time.Now())); err != nil {
			if errors.Is(zmq.AsErrno(err), zmq.Errno(4)) { // EINTR
				continue
			}
			return fmt.Errorf("poll: %w", err)
		}
		now := time.Now()
		poolMsg := func(id, payload []byte) { st.poolMsg(now, id, payload) }
		// Clients first, each answered before anything else is done: a
		// status must not wait behind the results of a thousand pools.
		ix.drain(ix.clientSock, func(id, payload []byte) {
			st.clientMsg(now, id, payload)
			ix.sendOut(st.takeOut()) // the reply; journal work waits for act below
			// A submission of thousands of tasks takes milliseconds, and
			// several can be waiting: keep the pools fed in between, or
			// their prefetch runs dry behind a stream of submissions.
			ix.drain(ix.workerSock, poolMsg)
			st.turn(now)
			ix.act(w, rd)
		})
		ix.drain(ix.workerSock, poolMsg)
		for {
			if _, err := ix.wakeRecv.RecvBytes(zmq.DONTWAIT); err != nil {
				break
			}
		}
		st.at(now)
	cmds:
		for {
			select {
			case f := <-ix.cmds:
				f()
			default:
				break cmds
			}
		}
		for _, d := range rd.collect() {
			st.rowsRead(now, d.q, d.rows, d.more, d.err)
		}
		if e := w.failure(); e != nil {
			st.journalFailing(now, e)
		}
		if err, done := w.collect(); done {
			st.committed(now, err)
			if err != nil {
				return fmt.Errorf("journal write failed, stopping to lose nothing: %w", err)
			}
		}
		st.turn(now)
		ix.act(w, rd)
		ix.publishStats(now)
	}
}

// act carries out the core's actions: sends its messages, starts its reads,
// tells the block watcher of registrations and hands the journal batch to
// the writer when it is idle.
func (ix *Interchange) act(w *writer, rd *reader) {
	st := ix.st
	rd.start(st.takeReads())
	ix.sendOut(st.takeOut())
	if pw, ok := ix.opt.Blocks.(PoolWatcher); ok {
		for _, b := range st.takeRegistered() {
			pw.PoolRegistered(b)
		}
	} else {
		st.takeRegistered()
	}
	if st.stopRequested {
		ix.requestStop()
	}
	if !w.busy {
		if b := st.takeBatch(); b != nil {
			w.submit(b)
		}
	}
}

// flushJournalSync writes what is pending before the loop exits.
func (ix *Interchange) flushJournalSync(w *writer) {
	st := ix.st
	w.abort()
	if err, done := w.wait(); done {
		st.committed(time.Now(), err)
	}
	if b := st.takeBatch(); b != nil {
		err := ix.opt.Journal.Write(b)
		if err != nil {
			ix.log.Error("final journal write failed", "err", err)
		}
		st.committed(time.Now(), err)
	}
	ix.sendOut(st.takeOut())
}

// drain reads every ready message of a socket (bounded per turn).
func (ix *Interchange) drain(s *zmq.Socket, handle func(id []byte, payload []byte)) {
	for range 10000 {
		parts, err := s.RecvMessageBytes(zmq.DONTWAIT)
		if err != nil {
			return
		}
		if len(parts) != 2 {
			ix.log.Warn("dropping message with unexpected frame count", "frames", len(parts))
			continue
		}
		handle(parts[0], parts[1])
	}
}

// sendOut sends the core's messages. A reply that cannot be encoded
// (over wire.MaxFrame) is replaced by an error reply, so that the client
// learns why instead of waiting for its timeout.
func (ix *Interchange) sendOut(out []send) {
	for _, m := range out {
		s := ix.clientSock
		if m.to == toPool {
			s = ix.workerSock
		}
		if m.raw != nil {
			if _, err := s.SendMessageDontwait(m.id, m.raw); err != nil {
				ix.log.Debug("send", "err", err)
			}
			continue
		}
		if err := ix.send(s, m.id, m.msg); err != nil && m.to == toClient {
			ix.send(s, m.id, &wire.Envelope{RequestId: m.msg.RequestId, Body: &wire.Envelope_Error{Error: &wire.ErrorReply{
				Message: fmt.Sprintf("the daemon could not send its reply: %v", err)}}})
		}
	}
}

// send encodes and sends one message; a message that cannot be encoded
// (over wire.MaxFrame) is logged and returned, never sent.
func (ix *Interchange) send(s *zmq.Socket, id []byte, m *wire.Envelope) error {
	b, err := wire.Encode(m)
	if err != nil {
		ix.log.Error("encode", "err", err)
		return err
	}
	if _, err := s.SendMessageDontwait(id, b); err != nil {
		ix.log.Debug("send", "err", err)
	}
	return nil
}

func (ix *Interchange) publishStats(now time.Time) {
	if now.Sub(ix.stats.At) < 100*time.Millisecond {
		return
	}
	s := ix.st.snapshot(now)
	ix.statsMu.Lock()
	ix.stats = s
	ix.statsMu.Unlock()
}

// requestStop closes the stop channel once.
func (ix *Interchange) requestStop() {
	ix.once.Do(func() { close(ix.stop) })
}
