package interchange

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/htex/htex/journal"
	"github.com/htex/htex/wire"
)

// MaxTasksPerSubmit bounds one SubmitRequest; clients send larger jobs in
// several requests.
const MaxTasksPerSubmit = wire.MaxTasksPerSubmit

func (s *state) reply(id []byte, reqID uint64, m *wire.Envelope) {
	m.RequestId = reqID
	s.toClient(id, m)
}

func (s *state) replyError(id []byte, reqID uint64, format string, args ...any) {
	s.reply(id, reqID, &wire.Envelope{Body: &wire.Envelope_Error{Error: &wire.ErrorReply{Message: fmt.Sprintf(format, args...)}}})
}

// handleClient handles one request from a client.
func (s *state) handleClient(id, payload []byte) {
	m, err := wire.Decode(payload)
	if err != nil {
		var ve *wire.VersionError
		if errors.As(err, &ve) {
			s.replyError(id, 0, "%v", err)
			return
		}
		// Answer rather than drop: the client would wait for its timeout
		// and then blame a missing daemon.
		s.log.Warn("refusing malformed client message", "err", err, "bytes", len(payload))
		reqID, _ := wire.PeekRequestID(payload)
		s.replyError(id, reqID, "the daemon could not read request %d (%d bytes): %v", reqID, len(payload), err)
		return
	}
	switch b := m.Body.(type) {
	case *wire.Envelope_Submit:
		s.submit(id, m.RequestId, b.Submit)
	case *wire.Envelope_Status:
		s.reply(id, m.RequestId, &wire.Envelope{Body: &wire.Envelope_StatusReply{StatusReply: s.status()}})
	case *wire.Envelope_ResultsRequest:
		s.resultsRequest(id, m.RequestId, b.ResultsRequest)
	case *wire.Envelope_Watch:
		s.watch(id, m.RequestId, b.Watch)
	case *wire.Envelope_Cancel:
		s.cancelJob(id, m.RequestId, b.Cancel.JobId)
	case *wire.Envelope_Stop:
		s.log.Info("stop requested by a client")
		s.reply(id, m.RequestId, &wire.Envelope{Body: &wire.Envelope_Ack{Ack: &wire.Ack{Message: "stopping"}}})
		s.stopRequested = true
	default:
		s.replyError(id, m.RequestId, "unexpected message %s on the client channel", typeName(m))
	}
}

// validateSpec checks a task spec; the error names the field and value.
func validateSpec(i int, t *wire.TaskSpec) error {
	if argv := t.Args(); len(argv) == 0 || argv[0] == "" {
		return fmt.Errorf("task %d: argv is empty", i)
	}
	for _, e := range t.Envs() {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return fmt.Errorf("task %d: env %q: want KEY=VALUE", i, e)
		}
	}
	if t.TimeoutMs < 0 || t.TimeoutMs > wire.MaxTimeoutMs {
		return fmt.Errorf("task %d: timeout %dms: must be in [0, %d]", i, t.TimeoutMs, wire.MaxTimeoutMs)
	}
	if t.Retries < -1 || t.Retries > wire.MaxRetries {
		return fmt.Errorf("task %d: retries %d: must be in [0, %d]", i, t.Retries, wire.MaxRetries)
	}
	if err := wire.CheckTask(t); err != nil {
		return fmt.Errorf("task %d: %w", i, err)
	}
	return validateMPI(i, t)
}

func (s *state) submit(id []byte, reqID uint64, r *wire.SubmitRequest) {
	if err := s.checkSubmit(r); err != nil {
		s.replyError(id, reqID, "%s", err)
		return
	}
	j := s.submitJob(r)
	first := s.nextTask
	for _, spec := range r.Tasks {
		s.enqueue(j, spec)
	}
	if r.Last {
		j.sealed = true
		s.jobsDirty[j.id] = true
	}
	// Answer only once the tasks are durable.
	s.posts = append(s.posts, post{reply: id, reqID: reqID, msg: &wire.Envelope{Body: &wire.Envelope_SubmitReply{
		SubmitReply: &wire.SubmitReply{JobId: j.id, FirstTaskId: first, Count: int32(len(r.Tasks))}}}})
}

// checkSubmit refuses a request as a whole, before any of its tasks is
// taken: a failing journal, too many tasks, a bad task, a size no pool
// can take, or a job that is gone or sealed.
func (s *state) checkSubmit(r *wire.SubmitRequest) error {
	if e := s.journalErr; e != nil {
		return fmt.Errorf("submit refused: %v; the daemon retries the write and accepts tasks again once it succeeds", e)
	}
	if len(r.Tasks) > MaxTasksPerSubmit {
		return fmt.Errorf("submit: %d tasks in one request exceeds %d; send them in parts", len(r.Tasks), MaxTasksPerSubmit)
	}
	for i, t := range r.Tasks {
		if err := validateSpec(i, t); err != nil {
			return fmt.Errorf("submit: %w", err)
		}
		if err := s.admitMPI(i, t); err != nil {
			return fmt.Errorf("submit: %w", err)
		}
		if err := s.refuseSize(i, specShape(t)); err != nil {
			return fmt.Errorf("submit: %w", err)
		}
	}
	if err := s.shapesFit(r.Tasks); err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	if r.JobId != 0 {
		j := s.jobs[r.JobId]
		if j == nil {
			return fmt.Errorf("submit: job %d does not exist", r.JobId)
		}
		if j.sealed {
			return fmt.Errorf("submit: job %d is sealed; submit a new job", r.JobId)
		}
	}
	return nil
}

// submitJob is the request's job: the one it names, or a new one.
func (s *state) submitJob(r *wire.SubmitRequest) *job {
	if r.JobId != 0 {
		return s.jobs[r.JobId] // checked by checkSubmit
	}
	j := &job{id: s.nextJob, name: r.Name}
	s.nextJob++
	s.jobs[j.id] = j
	s.pending.Jobs = append(s.pending.Jobs, journal.Job{ID: int64(j.id), Name: r.Name, SubmittedAt: s.now})
	return j
}

// enqueue takes one task of job j: queued (its fields in the arena, or
// spilled to the journal when the queue is large) and journaled with the
// next commit.
func (s *state) enqueue(j *job, spec *wire.TaskSpec) {
	retries := spec.Retries
	if retries < 0 {
		retries = int32(s.cfg.DefaultRetries) // checked at start (New)
	}
	var sid shapeID
	if spec.Cores|spec.Gpus|spec.Nodes|spec.RanksPerNode != 0 || spec.MemBytes != 0 {
		sid, _ = s.shapes.intern(specShape(spec)) // room checked by checkSubmit (shapesFit)
	}
	t := s.tasks.add(task{id: s.nextTask, jobID: j.id, retries: int16(retries), timeoutMs: spec.TimeoutMs, priority: spec.Priority,
		shape: sid}, s.now.UnixNano())
	s.queuedExtra += s.extraSlots(t)
	if s.spill() {
		s.spillTask(t)
	} else {
		t.setFields(s.arena.fieldsOf(&wire.Task{Id: t.id, JobId: j.id, Argv: spec.Argv, Env: spec.Env, Cwd: spec.Cwd,
			ArgvRaw: spec.ArgvRaw, EnvRaw: spec.EnvRaw, CwdRaw: spec.CwdRaw, TimeoutMs: spec.TimeoutMs,
			ArrayIndex: spec.ArrayIndex, Noop: spec.Noop, StdoutPath: spec.StdoutPath, StderrPath: spec.StderrPath,
			Cores: spec.Cores, Gpus: spec.Gpus, MemBytes: spec.MemBytes, RanksPerNode: spec.RanksPerNode}))
	}
	s.nextTask++
	s.queue.push(t)
	j.total++
	j.unfinished++
	s.pending.Tasks = append(s.pending.Tasks, journal.Task{ID: int64(t.id), JobID: int64(j.id), ArrayIndex: spec.ArrayIndex,
		Argv: spec.Args(), Env: spec.Envs(), Cwd: spec.Dir(), Timeout: time.Duration(spec.TimeoutMs) * time.Millisecond,
		Retries: int(retries), Priority: int(spec.Priority), Noop: spec.Noop, StdoutPath: spec.StdoutPath,
		StderrPath: spec.StderrPath, SubmittedAt: s.now, Cores: int(spec.Cores), GPUs: int(spec.Gpus), MemBytes: spec.MemBytes,
		Nodes: int(spec.Nodes), RanksPerNode: int(spec.RanksPerNode)})
}

func (s *state) status() *wire.StatusReply {
	r := &wire.StatusReply{Label: s.cfg.Label, RunDir: s.cfg.RunDir, Encrypted: s.cfg.Encrypted,
		Provider: s.cfg.Provider, Warning: s.cfg.Warning, Jobs: int64(len(s.jobs))}
	for _, j := range s.jobs {
		r.Succeeded += j.succeeded
		r.Failed += j.failed + j.cancelled
	}
	perBlock := map[int64]*wire.BlockStatus{}
	for _, p := range s.poolOrder {
		r.Running += int64(len(p.running))
		busy := int32(min(s.used(p), int(p.reg.Slots))) // slots, as a task of a size or a multi-node task holds several
		r.Pools = append(r.Pools, &wire.PoolStatus{Id: p.id, Node: p.reg.Node, BlockId: p.reg.BlockId, Slots: p.reg.Slots,
			Busy: busy, LastHeartbeatUnixMs: p.lastSeen.UnixMilli(), Draining: p.draining})
		b := perBlock[p.reg.BlockId]
		if b == nil {
			b = &wire.BlockStatus{Id: p.reg.BlockId}
			perBlock[p.reg.BlockId] = b
		}
		b.Pools++
		b.Slots += p.reg.Slots
		b.Busy += busy
		if !p.idleSince.IsZero() && (b.IdleSinceUnixMs == 0 || p.idleSince.UnixMilli() > b.IdleSinceUnixMs) {
			b.IdleSinceUnixMs = p.idleSince.UnixMilli()
		}
	}
	r.Queued = int64(s.tasks.len()) - r.Running
	r.Waiting = append(s.gangWaiting(), s.waitingReasons()...)
	if bs := s.cfg.Blocks; bs != nil {
		for _, b := range bs.BlockStatuses() {
			if pb := perBlock[b.Id]; pb != nil {
				b.Pools, b.Slots, b.Busy = pb.Pools, pb.Slots, pb.Busy
				if b.State == "pending" {
					b.State = "running" // a pool registered before the scheduler was polled
				}
				if pb.Busy == 0 {
					b.IdleSinceUnixMs = pb.IdleSinceUnixMs
				}
			}
			r.Blocks = append(r.Blocks, b)
		}
		r.Scaler = bs.ScalerSummary()
	}
	return r
}

// resultsRequest checks a results request and asks the driver for its
// journal rows (rowsRead goes on). The rows are read off the loop.
func (s *state) resultsRequest(id []byte, reqID uint64, r *wire.ResultsRequest) {
	limit := int(r.Limit)
	if limit <= 0 || limit > 10000 {
		limit = 1000
	}
	if r.JobId != 0 && s.jobs[r.JobId] == nil {
		s.replyError(id, reqID, "results: job %d does not exist", r.JobId)
		return
	}
	s.reads = append(s.reads, readReq{id: id, reqID: reqID, jobID: r.JobId, after: r.AfterTaskId, limit: limit})
}

// rowsRead is the event of the journal rows of a results request read: a
// page of at most limit rows and about wire.BatchBytes, more telling
// whether the job has rows after it (for a load, up to limit+1 rows). A
// task without a result row is reported from memory: running where a
// pool holds it.
func (s *state) rowsRead(now time.Time, q readReq, rows []journal.Row, more bool, err error) {
	s.at(now)
	if q.load {
		s.tasksLoaded(q, rows, err)
		return
	}
	if err != nil {
		s.replyError(q.id, q.reqID, "results: %v", err)
		return
	}
	out := &wire.ResultsReply{More: more}
	bytes := 0
	for i, row := range rows {
		tr := s.taskResult(row)
		// The journal's page is cut by its own estimate; this is exact.
		n := resultRowBytes(tr)
		if i > 0 && bytes+n > wire.BatchBytes {
			out.More = true
			break
		}
		bytes += n
		out.Results = append(out.Results, tr)
	}
	s.reply(q.id, q.reqID, &wire.Envelope{Body: &wire.Envelope_ResultsReply{ResultsReply: out}})
}

func (s *state) taskResult(row journal.Row) *wire.TaskResult {
	tr := &wire.TaskResult{TaskId: uint64(row.Task.ID), JobId: uint64(row.Task.JobID), ArrayIndex: row.Task.ArrayIndex, BlockId: -1}
	tr.SetArgs(row.Task.Argv)
	tr.StdoutPath, tr.StderrPath = row.Task.StdoutPath, row.Task.StderrPath
	tr.Cores, tr.Gpus, tr.MemBytes = int32(row.Task.Cores), int32(row.Task.GPUs), row.Task.MemBytes
	tr.Nodes, tr.RanksPerNode = int32(row.Task.Nodes), int32(row.Task.RanksPerNode)
	if res := row.Result; res != nil {
		tr.State, tr.ExitCode, tr.Signal, tr.ErrorKind, tr.Error = res.State, int32(res.ExitCode), int32(res.Signal), res.ErrorKind, res.Error
		tr.Attempts, tr.BlockId, tr.Node = int32(res.Attempts), res.BlockID, res.Node
		tr.Stdout, tr.Stderr = res.Stdout, res.Stderr
		if g := res.Got; g != nil {
			tr.GotCpus, tr.GotGpus, tr.GotNodes = g.CPUs, g.GPUs, g.Nodes
		}
		if !res.StartedAt.IsZero() {
			tr.Seconds = res.EndedAt.Sub(res.StartedAt).Seconds()
		}
	} else if t := s.tasks.get(uint64(row.Task.ID)); t != nil && t.state == stRunning {
		tr.State, tr.Attempts = "running", int32(t.attempts)
		tr.BlockId, tr.Node = t.pool.reg.BlockId, t.pool.reg.Node
	} else {
		tr.State = "queued"
		if t != nil {
			tr.Attempts = int32(t.attempts)
		}
	}
	return tr
}

func (s *state) watch(id []byte, reqID uint64, r *wire.WatchRequest) {
	j := s.jobs[r.JobId]
	if j == nil {
		s.replyError(id, reqID, "watch: job %d does not exist", r.JobId)
		return
	}
	var w *watcher
	for _, x := range j.watchers {
		if string(x.id) == string(id) {
			w = x
		}
	}
	if w == nil {
		w = &watcher{id: append([]byte(nil), id...), wantResults: r.WantResults}
		j.watchers = append(j.watchers, w)
		s.watched[j.id] = j
	}
	w.renewed = s.now
	w.dirty = true
}

// flushWatchers sends progress to the watchers of jobs that changed.
func (s *state) flushWatchers() {
	for _, id := range sortedKeys(s.watched) {
		j := s.watched[id]
		dirty := s.jobsDirty[j.id]
		for _, w := range j.watchers {
			if !dirty && !w.dirty {
				continue
			}
			parts := splitDone(w.done)
			for k, done := range parts {
				last := k == len(parts)-1
				p := &wire.Progress{JobId: j.id, Total: j.total, Succeeded: j.succeeded, Failed: j.failed + j.cancelled,
					Running: j.unfinished, Complete: last && j.complete(), Done: done, Sealed: j.sealed}
				s.toClient(w.id, &wire.Envelope{Body: &wire.Envelope_Progress{Progress: p}})
			}
			w.done, w.dirty = nil, false
		}
	}
	clear(s.jobsDirty)
}

func (s *state) cancelJob(id []byte, reqID uint64, jobID uint64) {
	j := s.jobs[jobID]
	if j == nil {
		s.replyError(id, reqID, "cancel: job %d does not exist", jobID)
		return
	}
	j.sealed = true
	s.jobsDirty[j.id] = true
	// In id order, so that the journal rows and messages do not depend on
	// the order of a map.
	var mine []*task
	s.tasks.each(func(t *task) {
		if t.jobID == jobID {
			mine = append(mine, t)
		}
	})
	slices.SortFunc(mine, func(a, b *task) int { return cmp.Compare(a.id, b.id) })
	byPool := map[*pool][]uint64{}
	var pools []*pool
	n := len(mine)
	for _, t := range mine {
		switch t.state {
		case stQueued:
			s.finish(t, &wire.Result{TaskId: t.id, ErrorKind: wire.ErrorKind_CANCELLED, Error: "cancelled before it ran"}, nil)
		case stRunning:
			if t.shape != 0 {
				s.gangCancelled(t)
			}
			if byPool[t.pool] == nil {
				pools = append(pools, t.pool)
			}
			byPool[t.pool] = append(byPool[t.pool], t.id)
		}
	}
	for _, p := range pools {
		s.toPool(p.ident, &wire.Envelope{Body: &wire.Envelope_CancelTasks{CancelTasks: &wire.CancelTasks{Ids: byPool[p]}}})
	}
	s.event("job_cancelled", 0, "", 0, fmt.Sprintf("job %d: %d unfinished tasks cancelled", jobID, n))
	s.posts = append(s.posts, post{reply: id, reqID: reqID, msg: &wire.Envelope{Body: &wire.Envelope_Ack{
		Ack: &wire.Ack{Message: fmt.Sprintf("job %d: %d unfinished tasks cancelled", jobID, n)}}}})
}
