package interchange

import (
	"cmp"
	"log/slog"
	"slices"
	"time"

	"github.com/htex/htex/journal"
	"github.com/htex/htex/wire"
)

// The core. Every decision of the broker is taken by state, a pure state
// machine in the manner of etcd's raft: the driver (Interchange.Run) feeds
// it events, each carrying the time it happened, and carries out the
// actions it leaves behind. The core opens no socket, reads no clock and
// runs no SQL; the scenario tests (core_test.go, testdata/) drive it alone.
//
// Events (methods of state):
//
//	clientMsg(now, id, payload)   a frame from a client
//	poolMsg(now, id, payload)     a frame from a pool
//	turn(now)                     one turn of the loop: periodic checks
//	                              (heartbeats, the restart hold, watchers),
//	                              dispatch, progress and acknowledgements
//	committed(now, err)           the batch handed out by takeBatch is in
//	                              the journal (or failed)
//	journalFailing(now, err)      that batch fails for now; the writer
//	                              retries it
//	rowsRead(now, req, rows, err) the journal rows of a results request
//	restore(data, now)            what the journal held at start
//	the State methods             the daemon's commands (Do)
//
// Actions (taken by the driver after each event):
//
//	takeOut()      messages to send, each to one client or pool
//	takeBatch()    the journal rows to write, when no batch is in flight
//	takeReads()    journal reads to run (results requests)
//	takeRegistered() blocks whose pool registered (PoolWatcher)
//	stopRequested  a client asked the daemon to stop

// config is what the core needs of Options.
type config struct {
	Label, RunDir, Provider, Warning string
	Encrypted                        bool
	HeartbeatThreshold               time.Duration
	DrainPeriod                      time.Duration
	DefaultRetries                   int
	// Blocks gives the status reply the daemon's view of blocks; it is
	// read, never waited on. May be nil.
	Blocks BlockSource
	// KeepLoaded and LoadBatch tune spilled tasks (spill.go); 0 = default.
	KeepLoaded, LoadBatch int
	// Observer hears what the metrics count; called on the loop, it
	// never blocks. May be nil.
	Observer Observer
	// MPI says which multi-node tasks the run can start (gang.go).
	MPI MPISettings
	// PoolShape is the config's pool shape; zero = unknown (sizes.go).
	PoolShape PoolShape
}

func configOf(o Options) config {
	return config{Label: o.Label, RunDir: o.RunDir, Provider: o.Provider, Warning: o.Warning,
		Encrypted: o.Encrypted, HeartbeatThreshold: o.HeartbeatThreshold, DrainPeriod: o.DrainPeriod,
		DefaultRetries: o.DefaultRetries, Blocks: o.Blocks, Observer: o.Observer, MPI: o.MPI, PoolShape: o.PoolShape}
}

// peer says which channel a message goes out on.
type peer uint8

const (
	toClient peer = iota
	toPool
)

// send is one message for one peer: msg, or a frame already encoded.
type send struct {
	to  peer
	id  []byte // socket identity
	msg *wire.Envelope
	raw []byte
}

// readReq is a journal read: the rows of a results request, or (load)
// the tasks after an id, for spilled tasks (spill.go).
type readReq struct {
	load         bool
	id           []byte
	reqID        uint64
	jobID, after uint64
	limit        int
}

// restoreData is what the journal holds at start (Interchange.Restore).
type restoreData struct {
	maxJob, maxTask int64
	counts          []journal.JobCount
	unfinished      []journal.TaskHead // without their commands: restored spilled
	attempts        map[int64]int
	pools           []journal.Pool // connected when the previous daemon ended
}

func newState(cfg config, log *slog.Logger) *state {
	if log == nil {
		log = slog.Default()
	}
	return &state{
		cfg: cfg, log: log,
		jobs:      map[uint64]*job{},
		pools:     map[string]*pool{},
		pending:   &journal.Batch{},
		jobsDirty: map[uint64]bool{},
		watched:   map[uint64]*job{},
		nextJob:   1, nextTask: 1,
	}
}

// at moves the core's clock; time never goes back.
func (s *state) at(now time.Time) {
	if now.After(s.now) {
		s.now = now
	}
}

// clientMsg is the event of one frame from a client.
func (s *state) clientMsg(now time.Time, id, payload []byte) {
	s.at(now)
	s.handleClient(id, payload)
}

// poolMsg is the event of one frame from a pool.
func (s *state) poolMsg(now time.Time, id, payload []byte) {
	s.at(now)
	s.handleWorker(id, payload)
}

// turn is the event of one turn of the loop.
func (s *state) turn(now time.Time) {
	s.at(now)
	s.tick(s.now)
	s.dispatch()
	s.requestLoad()
	s.flushWatchers()
	s.flushAcks(s.now)
}

// takeOut returns the messages to send and forgets them.
func (s *state) takeOut() []send {
	out := s.out
	s.out = nil
	return out
}

// takeReads returns the journal reads to run.
func (s *state) takeReads() []readReq {
	r := s.reads
	s.reads = nil
	return r
}

// takeRegistered returns the blocks whose pools registered since the last
// call, one entry per registration.
func (s *state) takeRegistered() []int64 {
	r := s.registeredBlocks
	s.registeredBlocks = nil
	return r
}

// takeBatch hands out the journal rows to write, or nil when a batch is
// still in flight or there is nothing to write. Its after-commit work
// (replies, acknowledgements, counters) waits for committed.
func (s *state) takeBatch() *journal.Batch {
	if s.inFlight || (s.pending.Empty() && len(s.posts) == 0) {
		return nil
	}
	s.inFlight = true
	s.flightPosts = s.posts
	if n := len(s.pending.Tasks); n > 0 {
		s.flightMaxTask = max(s.flightMaxTask, uint64(s.pending.Tasks[n-1].ID))
	}
	b := s.pending
	s.pending, s.posts = &journal.Batch{}, nil
	return b
}

// committed is the event of the in-flight batch committed (err nil) or
// failed for good. After a failure nothing of the batch is applied: no
// reply says a task was accepted, no pool hears its results were kept.
func (s *state) committed(now time.Time, err error) {
	s.at(now)
	posts := s.flightPosts
	s.inFlight, s.flightPosts = false, nil
	if err != nil {
		return
	}
	s.committedTask = max(s.committedTask, s.flightMaxTask)
	if s.journalErr != nil {
		s.log.Info("journal writes work again: accepting submissions")
		s.journalErr = nil
	}
	s.applyPosts(posts)
}

// journalFailing is the event of the batch in flight failing to be written
// for a reason that may pass (the writer retries it): until it commits,
// submissions are refused, and results stay unacknowledged (their
// acknowledgements wait for the batch), so that the pools keep them.
func (s *state) journalFailing(now time.Time, err *journal.WriteError) {
	s.at(now)
	if s.journalErr == nil {
		s.log.Error("journal write failed: refusing submissions and holding results until it succeeds", "err", err)
	}
	s.journalErr = err
}

// wantsWrite reports whether a batch waits to be handed out.
func (s *state) wantsWrite() bool {
	return !s.inFlight && (!s.pending.Empty() || len(s.posts) > 0)
}

// nextWake is how long the driver may wait for a message before the next
// turn is due.
func (s *state) nextWake(now time.Time) time.Duration {
	if s.wantsWrite() {
		return 0
	}
	if len(s.acks) > 0 {
		return max(0, ackEvery-now.Sub(s.lastAcks))
	}
	return 200 * time.Millisecond
}

func (s *state) send(to peer, id []byte, m *wire.Envelope) {
	s.out = append(s.out, send{to: to, id: id, msg: m})
}

func (s *state) sendRaw(to peer, id []byte, frame []byte) {
	s.out = append(s.out, send{to: to, id: id, raw: frame})
}

func (s *state) toPool(id []byte, m *wire.Envelope)   { s.send(toPool, id, m) }
func (s *state) toClient(id []byte, m *wire.Envelope) { s.send(toClient, id, m) }

// sortedKeys returns the keys of m in order: the core's output must not
// depend on the order of a map.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
