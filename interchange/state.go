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
	capacity  int
	running   map[uint64]*task
	lastSeen  time.Time
	idleSince time.Time
	draining  bool
	blockEnd  time.Time
	done      int // results of its tasks received
}

// post is work to do once a journal batch has committed.
type post struct {
	reply   []byte // client identity to answer
	reqID   uint64
	msg     *wire.Envelope
	done    *doneTask
	newJobs []uint64
	ackPool string // pool identity whose Results message ackSeq to acknowledge
	ackSeq  uint64
}

type doneTask struct {
	jobID, taskID uint64
	state, kind   string
	end           time.Time
	submitted     time.Time
}

type state struct {
	ix  *Interchange
	log *slog.Logger
	now time.Time

	tasks     map[uint64]*task
	queue     taskQueue
	jobs      map[uint64]*job
	pools     map[string]*pool
	poolOrder []*pool
	rr        int
	nextJob   uint64
	nextTask  uint64

	// drainBlocks are the blocks being cancelled: their pools take no tasks.
	drainBlocks map[int64]bool

	// After a restart (resume.go): the pools of the previous daemon not yet
	// registered again, and the restored tasks held back until they are.
	former    map[string]*formerPool
	restored  []*task
	holding   bool
	holdUntil time.Time

	writer     *writer
	journalErr *journal.WriteError // set while a batch cannot be written (writer.go)
	pending    *journal.Batch
	posts      []post
	lastTick   time.Time
	jobsDirty  map[uint64]bool
	watched    map[uint64]*job     // jobs with at least one watcher
	acks       map[string][]uint64 // committed Results messages to acknowledge, per pool
	lastAcks   time.Time
}

func newState(ix *Interchange) *state {
	return &state{
		ix: ix, log: ix.log,
		tasks:     map[uint64]*task{},
		jobs:      map[uint64]*job{},
		pools:     map[string]*pool{},
		pending:   &journal.Batch{},
		jobsDirty: map[uint64]bool{},
		watched:   map[uint64]*job{},
		nextJob:   1, nextTask: 1,
	}
}

func (s *state) restore() error {
	j := s.ix.opt.Journal
	maxJob, maxTask, _, err := j.MaxIDs()
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	s.nextJob, s.nextTask = uint64(maxJob)+1, uint64(maxTask)+1
	counts, err := j.JobCounts()
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	for _, c := range counts {
		s.jobs[uint64(c.JobID)] = &job{id: uint64(c.JobID), name: c.Name, total: c.Total,
			succeeded: c.Succeeded, failed: c.Failed, cancelled: c.Cancelled, sealed: true}
	}
	unfinished, attempts, err := j.Unfinished()
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	restored := make([]*task, 0, len(unfinished))
	for _, jt := range unfinished {
		t := &task{id: uint64(jt.ID), jobID: uint64(jt.JobID), retries: int32(jt.Retries),
			attempts: int32(attempts[jt.ID]), spec: specFromJournal(jt), submitted: jt.SubmittedAt}
		s.tasks[t.id] = t
		if jb := s.jobs[t.jobID]; jb != nil {
			jb.unfinished++
		}
		if err := unsendable(t.spec); err != nil { // from an older htex
			s.finish(t, &wire.Result{TaskId: t.id, ErrorKind: wire.ErrorKind_SPAWN, ExitCode: -1, Error: err.Error()}, nil)
			continue
		}
		restored = append(restored, t)
	}
	if len(unfinished) > 0 {
		s.log.Info("resumed unfinished tasks from the journal", "tasks", len(unfinished))
	}
	pools, err := j.Pools(true)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	s.loadFormer(pools, restored, time.Now())
	return nil
}

// nextTimeout is how long the loop may sleep.
func (s *state) nextTimeout(now time.Time) time.Duration {
	if s.writer != nil && !s.writer.busy && !s.pending.Empty() {
		return 0
	}
	if len(s.acks) > 0 {
		return max(0, ackEvery-now.Sub(s.lastAcks))
	}
	return 200 * time.Millisecond
}

// tick runs the periodic checks: lost pools, expired watchers, drains.
func (s *state) tick(now time.Time) {
	if now.Sub(s.lastTick) < 100*time.Millisecond {
		return
	}
	s.lastTick = now
	s.releaseRestored(now)
	thr := s.ix.opt.HeartbeatThreshold
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
	s.removePool(p)
	ended := s.now
	s.pending.Pools = append(s.pending.Pools, journal.Pool{ID: p.id, BlockID: p.reg.BlockId, Node: p.reg.Node,
		Hostname: p.reg.Hostname, CPUs: int(p.reg.Cpus), MemoryGB: p.reg.MemoryGb, Slots: int(p.reg.Slots),
		LostAt: ended}) // zero RegisteredAt: the first registration's time stays
	s.event("pool_lost", p.reg.BlockId, p.id, 0, why)
	for _, t := range p.running {
		s.pending.Attempts = append(s.pending.Attempts, journal.Attempt{TaskID: int64(t.id), Attempt: int(t.attempts),
			PoolID: p.id, BlockID: p.reg.BlockId, Node: p.reg.Node, State: "lost", ErrorKind: "manager_lost",
			StartedAt: t.dispatched, EndedAt: ended})
		t.pool = nil
		if t.attempts <= t.retries {
			t.state = stQueued
			s.queue.push(t)
			continue
		}
		s.finish(t, &wire.Result{TaskId: t.id, ErrorKind: wire.ErrorKind_MANAGER_LOST, Attempt: t.attempts,
			Error:     fmt.Sprintf("pool %s on %s was lost (%s) after %d attempts", p.id, p.reg.Node, why, t.attempts),
			EndUnixUs: ended.UnixMicro()}, p)
	}
}

func (s *state) removePool(p *pool) {
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
	t.state = stDone
	delete(s.tasks, t.id)
	if j := s.jobs[t.jobID]; j != nil {
		j.unfinished--
	}
	res := journal.Result{TaskID: int64(t.id), ExitCode: int(r.ExitCode), Signal: int(r.Signal),
		ErrorKind: errorKindName(r.ErrorKind), Error: r.Error, Attempts: int(max(t.attempts, 1)),
		Rank: int(r.Rank), Stdout: r.Stdout, Stderr: r.Stderr}
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
		kind: res.ErrorKind, end: res.EndedAt, submitted: t.submitted}})
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

// dispatch hands queued tasks to pools with free capacity, in turn.
func (s *state) dispatch() {
	n := len(s.poolOrder)
	if n == 0 || s.queue.Len() == 0 {
		return
	}
	s.rr = (s.rr + 1) % n
	var aside []*task
	for i := 0; i < n && s.queue.Len() > 0; i++ {
		p := s.poolOrder[(s.rr+i)%n]
		free := p.capacity - len(p.running)
		if free <= 0 || s.draining(p) || !s.refillDue(p, free) {
			continue
		}
		batch := &taskBatch{send: func(ts *wire.Tasks) {
			s.ix.send(s.ix.workerSock, p.ident, &wire.Envelope{Body: &wire.Envelope_Tasks{Tasks: ts}})
		}}
		sent := false
		skipped := 0
		for free > 0 {
			t := s.queue.pop()
			if t == nil {
				break
			}
			if !s.fits(t, p) {
				aside = append(aside, t)
				if skipped++; skipped > 256 {
					break
				}
				continue
			}
			t.state = stRunning
			t.pool = p
			t.attempts++
			t.dispatched = s.now
			if o := s.ix.opt.Observer; o != nil && !t.submitted.IsZero() {
				o.TaskDispatched(s.now.Sub(t.submitted))
			}
			p.running[t.id] = t
			free--
			sent = true
			batch.add(&wire.Task{Id: t.id, JobId: t.jobID, Argv: t.spec.Argv, Env: t.spec.Env,
				Cwd: t.spec.Cwd, ArgvRaw: t.spec.ArgvRaw, EnvRaw: t.spec.EnvRaw, CwdRaw: t.spec.CwdRaw, TimeoutMs: t.spec.TimeoutMs, ArrayIndex: t.spec.ArrayIndex, Attempt: t.attempts,
				Noop: t.spec.Noop, StdoutPath: t.spec.StdoutPath, StderrPath: t.spec.StderrPath})
		}
		batch.flush()
		for _, t := range aside {
			s.queue.push(t)
		}
		aside = aside[:0]
		if sent {
			p.idleSince = time.Time{}
		}
	}
}

// refillDue reports whether a pool with free capacity should get tasks
// now: at once when a slot may be idle, but its prefetch buffer only once
// half of it is free, so that a busy pool gets one Tasks message per many
// results instead of one per result.
func (s *state) refillDue(p *pool, free int) bool {
	prefetch := p.capacity - int(p.reg.Slots)
	return len(p.running) < int(p.reg.Slots) || free >= max(1, prefetch/2)
}

// draining reports whether a pool takes no new tasks: it drains (it said
// so, or it was told to), or its block ends within the drain period. The
// pool drains itself then, but its notice may still be on its way.
func (s *state) draining(p *pool) bool {
	if p.draining {
		return true
	}
	dp := s.ix.opt.DrainPeriod
	return dp > 0 && !p.blockEnd.IsZero() && !s.now.Before(p.blockEnd.Add(-dp))
}

// fitMargin is added to a task's time limit when it is checked against its
// pool's block end: the pool kills a task at its limit with a grace of 2 s
// (worker killGrace) and then reports it; the batch script stamps the end
// a little after the scheduler started the job.
const fitMargin = 5 * time.Second

// fits reports whether a task's time limit, with fitMargin, fits the pool's
// remaining time. The drain period does not shorten it: a pool that drains
// takes no new tasks, but runs those it has to their end. Tasks without a
// limit fit any pool that is not draining.
func (s *state) fits(t *task, p *pool) bool {
	if p.blockEnd.IsZero() || t.spec.TimeoutMs <= 0 {
		return true
	}
	return !s.now.Add(time.Duration(t.spec.TimeoutMs)*time.Millisecond + fitMargin).After(p.blockEnd)
}

func (s *state) snapshot(now time.Time) Stats {
	st := Stats{At: now}
	for _, p := range s.poolOrder {
		st.Running += len(p.running)
		st.Pools = append(st.Pools, PoolStat{ID: p.id, BlockID: p.reg.BlockId, Node: p.reg.Node,
			Slots: int(p.reg.Slots), Busy: len(p.running), Done: p.done, IdleSince: p.idleSince, Draining: s.draining(p), BlockEnd: p.blockEnd})
	}
	st.Queued = len(s.tasks) - st.Running
	sort.Slice(st.Pools, func(i, j int) bool { return st.Pools[i].ID < st.Pools[j].ID })
	return st
}

func specFromJournal(t journal.Task) *wire.TaskSpec {
	s := &wire.TaskSpec{TimeoutMs: t.Timeout.Milliseconds(),
		Retries: int32(t.Retries), Priority: int32(t.Priority), ArrayIndex: t.ArrayIndex, Noop: t.Noop,
		StdoutPath: t.StdoutPath, StderrPath: t.StderrPath}
	s.SetArgs(t.Argv)
	s.SetEnvs(t.Env)
	s.SetDir(t.Cwd)
	return s
}
