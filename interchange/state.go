package interchange

import (
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/htex/htex/journal"
	"github.com/htex/htex/wire"
)

// job holds a job's counters; they change only when the journal has
// committed the change, so what a client sees is always in the journal.
type job struct {
	id                                  uint64
	name                                string
	total, succeeded, failed, cancelled int64
	sealed                              bool
	watchers                            []*watcher
	unfinished                          int64 // in memory: queued or running
}

func (j *job) complete() bool {
	return j.sealed && j.succeeded+j.failed+j.cancelled >= j.total
}

type watcher struct {
	id          []byte
	wantResults bool
	renewed     time.Time
	done        []*wire.Done
	dirty       bool
}

// pool is a registered worker pool.
type pool struct {
	id        string
	ident     []byte
	reg       *wire.Register
	capacity  int       // slots and prefetch
	shape     slotShape // its slots (sizes.go)
	used      int       // slots charged to the tasks it holds: one per task without a size
	resv      *waiter   // the waiting task it is reserved for, or nil (sizes.go)
	running   map[uint64]*task
	lastSeen  time.Time
	idleSince time.Time
	draining  bool
	blockEnd  time.Time
	inReady   bool  // in state.ready
	gone      bool  // removed: lost or left
	done      int   // results of its tasks received
	gang      *gang // the multi-node task that holds it (gang.go)
}

// post is work to do once a journal batch has committed.
type post struct {
	reply   []byte // client identity to answer
	reqID   uint64
	msg     *wire.Envelope
	done    *doneTask
	ackPool string // pool identity whose Results message ackSeq to acknowledge
	ackSeq  uint64
}

type doneTask struct {
	jobID, taskID uint64
	state, kind   string
	end           time.Time
	submitted     int64 // unix ns, 0 = unknown
}

// state is the pure core of the interchange (core.go).
type state struct {
	cfg config
	log *slog.Logger
	now time.Time

	tasks  taskTable
	arena  taskArena
	shapes shapeTable // of unfinished tasks (shapes.go)
	gangs  gangSet    // multi-node tasks out of the queue (gang.go)
	// spilled tasks (spill.go)
	spilled       int    // queued tasks without their encoding
	loading       bool   // a load is in flight
	loadWanted    bool   // a load is wanted, from loadFrom on
	loadFrom      uint64 //
	loadNext      uint64 // where reading ahead goes on (0 = nothing spilled)
	committedTask uint64 // the highest task id the journal has committed
	flightMaxTask uint64 // the highest task id of the batches handed out
	queue         taskQueue
	jobs          map[uint64]*job
	pools         map[string]*pool
	poolOrder     []*pool
	ready         poolRing           // pools that may take tasks (dispatch.go)
	waiting       []*waiter          // tasks of a size no pool could take when dispatch came to them (sizes.go)
	queuedExtra   int                // Σ extraSlots of the queued tasks (sizes.go), for the scaler
	rescan        bool               // pools changed: place the waiting tasks without a reservation again
	waitDirty     bool               // look at the waiting tasks at the next dispatch (sizes.go)
	noPool        map[noPoolKey]bool // sizes that no pool can take or reserve for, until pools change
	stalled       bool               // dispatch met a spilled task
	nextJob       uint64
	nextTask      uint64

	// drainBlocks are the blocks being cancelled: their pools take no tasks.
	drainBlocks map[int64]bool

	// After a restart (resume.go): the pools of the previous daemon not yet
	// registered again, and the restored tasks held back until they are.
	former    map[string]*formerPool
	restored  []*task
	holding   bool
	holdUntil time.Time

	pending     *journal.Batch
	posts       []post
	inFlight    bool                // a batch is being written
	flightPosts []post              // its after-commit work
	journalErr  *journal.WriteError // set while a batch cannot be written (journalFailing)
	lastTick    time.Time
	jobsDirty   map[uint64]bool
	watched     map[uint64]*job     // jobs with at least one watcher
	acks        map[string][]uint64 // committed Results messages to acknowledge, per pool
	ackCount    int                 // how many seqs acks holds
	lastAcks    time.Time

	// Actions for the driver (core.go).
	out              []send
	reads            []readReq
	registeredBlocks []int64
	stopRequested    bool
}

// restore loads what the journal held at start: unfinished tasks come
// back queued but held (resume.go), job counters and ids go on.
func (s *state) restore(d restoreData, now time.Time) {
	s.at(now)
	s.nextJob, s.nextTask = uint64(d.maxJob)+1, uint64(d.maxTask)+1
	s.committedTask, s.flightMaxTask = uint64(d.maxTask), uint64(d.maxTask)
	for _, c := range d.counts {
		s.jobs[uint64(c.JobID)] = &job{id: uint64(c.JobID), name: c.Name, total: c.Total,
			succeeded: c.Succeeded, failed: c.Failed, cancelled: c.Cancelled, sealed: true}
	}
	// Every restored task comes back spilled (spill.go): its command is read
	// from the journal when dispatch comes near it, which is also when a
	// task too large for a frame (from an older htex) is failed.
	restored := make([]*task, 0, len(d.unfinished))
	for _, jt := range d.unfinished {
		var submitted int64
		if !jt.SubmittedAt.IsZero() {
			submitted = jt.SubmittedAt.UnixNano()
		}
		sid, err := s.shapes.intern(shapeOf(int32(jt.Cores), int32(jt.GPUs), jt.MemBytes, int32(jt.Nodes), int32(jt.RanksPerNode)))
		if err != nil { // more distinct sizes than ids: it runs as a task of one slot
			s.log.Error("restored task keeps no size", "task", jt.ID, "err", err)
		}
		retries, attempts, clamped := restoredBudget(jt.Retries, d.attempts[jt.ID])
		if clamped { // from an older htex, which took more
			s.log.Warn("restored task keeps the largest retry budget", "task", jt.ID, "retries", jt.Retries,
				"attempts", d.attempts[jt.ID], "max_retries", wire.MaxRetries)
		}
		t := s.tasks.add(task{id: uint64(jt.ID), jobID: uint64(jt.JobID), retries: retries,
			attempts: attempts, timeoutMs: jt.Timeout.Milliseconds(), priority: int32(jt.Priority),
			shape: sid}, submitted)
		s.queuedExtra += s.extraSlots(t)
		s.spillTask(t)
		if jb := s.jobs[t.jobID]; jb != nil {
			jb.unfinished++
		}
		restored = append(restored, t)
	}
	if len(d.unfinished) > 0 {
		s.log.Info("resumed unfinished tasks from the journal", "tasks", len(d.unfinished))
	}
	s.loadFormer(d.pools, restored, s.now)
}

// tick runs the periodic checks: lost pools, expired watchers, drains.
func (s *state) tick(now time.Time) {
	if now.Sub(s.lastTick) < 100*time.Millisecond {
		return
	}
	s.lastTick = now
	s.waitDirty = true // blocks near their end, drains: reservations are checked again
	s.releaseRestored(now)
	thr := s.cfg.HeartbeatThreshold
	for _, p := range s.poolOrder {
		if now.Sub(p.lastSeen) > thr {
			s.log.Warn("pool missed its heartbeats: removing it", "pool", p.id, "node", p.reg.Node,
				"block", p.reg.BlockId, "silent_for", now.Sub(p.lastSeen).Round(time.Millisecond), "tasks", len(p.running))
			s.lose(p, "missed heartbeats for "+thr.String())
		}
	}
	for _, j := range s.watched {
		keep := j.watchers[:0]
		for _, w := range j.watchers {
			if now.Sub(w.renewed) < 10*time.Second {
				keep = append(keep, w)
			}
		}
		j.watchers = keep
		if len(keep) == 0 {
			delete(s.watched, j.id)
		}
	}
}

// lose removes a pool and retries or fails its tasks.
func (s *state) lose(p *pool, why string) {
	if p.gang != nil {
		s.gangPoolLost(p, why)
	}
	s.removePool(p)
	ended := s.now
	s.pending.Pools = append(s.pending.Pools, journal.Pool{ID: p.id, BlockID: p.reg.BlockId, Node: p.reg.Node,
		Hostname: p.reg.Hostname, CPUs: int(p.reg.Cpus), MemoryGB: p.reg.MemoryGb, Slots: int(p.reg.Slots),
		LostAt: ended}) // zero RegisteredAt: the first registration's time stays
	s.event("pool_lost", p.reg.BlockId, p.id, 0, why)
	s.poolsChanged()
	for _, id := range sortedKeys(p.running) {
		t := p.running[id]
		s.pending.Attempts = append(s.pending.Attempts, journal.Attempt{TaskID: int64(t.id), Attempt: int(t.attempts),
			PoolID: p.id, BlockID: p.reg.BlockId, Node: p.reg.Node, State: "lost", ErrorKind: "manager_lost",
			StartedAt: time.Unix(0, t.dispatched), EndedAt: ended})
		t.pool = nil
		if t.attempts <= t.retries {
			t.state = stQueued
			s.queuedExtra += s.extraSlots(t)
			if !t.fields().loaded() { // it was claimed by a pool that registered again
				s.spillTask(t)
			}
			s.queue.push(t)
			continue
		}
		s.finish(t, &wire.Result{TaskId: t.id, ErrorKind: wire.ErrorKind_MANAGER_LOST, Attempt: int32(t.attempts),
			Error:     fmt.Sprintf("pool %s on %s was lost (%s) after %d attempts", p.id, p.reg.Node, why, t.attempts),
			EndUnixUs: ended.UnixMicro()}, p)
	}
}

func (s *state) removePool(p *pool) {
	p.gone = true
	delete(s.pools, p.id)
	for i, q := range s.poolOrder {
		if q == p {
			s.poolOrder = append(s.poolOrder[:i], s.poolOrder[i+1:]...)
			break
		}
	}
}

func (s *state) event(kind string, block int64, poolID string, taskID uint64, msg string) {
	s.pending.Events = append(s.pending.Events, journal.Event{At: s.now, Kind: kind, BlockID: block,
		PoolID: poolID, TaskID: int64(taskID), Message: msg})
}

// finish records the final outcome of a task.
func (s *state) finish(t *task, r *wire.Result, p *pool) {
	if t.state == stQueued {
		s.leaveQueue(t)
		s.queuedExtra -= s.extraSlots(t)
		if t.shape != 0 {
			s.waitDirty = true // it may wait, holding a reservation
		}
	}
	if t.shape != 0 {
		s.gangFinished(t)
	}
	s.shapes.release(t.shape)
	submitted := s.tasks.submittedAt(t) // for the latency metric, before the task goes
	s.tasks.remove(t)                   // state stDone
	if j := s.jobs[t.jobID]; j != nil {
		j.unfinished--
	}
	res := journal.Result{TaskID: int64(t.id), ExitCode: int(r.ExitCode), Signal: int(r.Signal),
		ErrorKind: errorKindName(r.ErrorKind), Error: r.Error, Attempts: int(max(t.attempts, 1)),
		Rank: int(r.Rank), Stdout: r.Stdout, Stderr: r.Stderr}
	if r.Cpus != "" || r.Gpus != "" || len(r.Nodes) > 0 {
		res.Got = &journal.Got{CPUs: r.Cpus, GPUs: r.Gpus, Nodes: r.Nodes}
	}
	if r.StartUnixUs > 0 {
		res.StartedAt = time.UnixMicro(r.StartUnixUs)
	}
	res.EndedAt = time.UnixMicro(r.EndUnixUs)
	if r.EndUnixUs == 0 {
		res.EndedAt = s.now
	}
	if p != nil {
		res.BlockID, res.PoolID, res.Node = p.reg.BlockId, p.id, p.reg.Node
	} else {
		res.BlockID = -1
	}
	switch r.ErrorKind {
	case wire.ErrorKind_NONE:
		res.State = "succeeded"
	case wire.ErrorKind_CANCELLED:
		res.State = "cancelled"
	default:
		res.State = "failed"
	}
	s.pending.Results = append(s.pending.Results, res)
	s.posts = append(s.posts, post{done: &doneTask{jobID: t.jobID, taskID: t.id, state: res.State,
		kind: res.ErrorKind, end: res.EndedAt, submitted: submitted}})
}

// restoredBudget is a restored task's retries and attempts as a task
// keeps them (at most wire.MaxRetries, and one attempt more), and whether
// the journal's were larger: an older htex took any retries. A task over
// its budget still fails at its next lost pool, as it would have.
func restoredBudget(retries, attempts int) (int16, int16, bool) {
	r := min(max(retries, 0), wire.MaxRetries)
	a := min(max(attempts, 0), wire.MaxRetries+1)
	return int16(r), int16(a), r != retries || a != attempts
}

func errorKindName(k wire.ErrorKind) string {
	switch k {
	case wire.ErrorKind_NONE:
		return ""
	case wire.ErrorKind_EXIT:
		return "exit"
	case wire.ErrorKind_SIGNAL:
		return "signal"
	case wire.ErrorKind_TIMEOUT:
		return "timeout"
	case wire.ErrorKind_SPAWN:
		return "spawn"
	case wire.ErrorKind_MANAGER_LOST:
		return "manager_lost"
	case wire.ErrorKind_CANCELLED:
		return "cancelled"
	}
	return "unknown"
}

func (s *state) snapshot(now time.Time) Stats {
	st := Stats{At: now, ExtraSlots: s.queuedExtra}
	for _, p := range s.poolOrder {
		st.Running += len(p.running)
		used := p.used
		if p.gang != nil && p.gang.running {
			used = int(p.reg.Slots) // a multi-node task holds its pools whole
		}
		st.ExtraSlots += max(used-len(p.running), 0)
		st.Pools = append(st.Pools, PoolStat{ID: p.id, BlockID: p.reg.BlockId, Node: p.reg.Node,
			Slots: int(p.reg.Slots), Busy: min(s.used(p), int(p.reg.Slots)), Done: p.done, IdleSince: p.idleSince, Draining: s.draining(p), BlockEnd: p.blockEnd})
	}
	st.Queued = s.tasks.len() - st.Running
	sort.Slice(st.Pools, func(i, j int) bool { return st.Pools[i].ID < st.Pools[j].ID })
	return st
}

func specFromJournal(t journal.Task) *wire.TaskSpec {
	s := &wire.TaskSpec{TimeoutMs: t.Timeout.Milliseconds(),
		Retries: int32(t.Retries), Priority: int32(t.Priority), ArrayIndex: t.ArrayIndex, Noop: t.Noop,
		StdoutPath: t.StdoutPath, StderrPath: t.StderrPath, Cores: int32(t.Cores), Gpus: int32(t.GPUs), MemBytes: t.MemBytes,
		Nodes: int32(t.Nodes), RanksPerNode: int32(t.RanksPerNode)}
	s.SetArgs(t.Argv)
	s.SetEnvs(t.Env)
	s.SetDir(t.Cwd)
	return s
}
