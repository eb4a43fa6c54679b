package interchange

import (
	"github.com/htex/htex/journal"
	"github.com/htex/htex/wire"
)

// Spilled tasks. Every task is in the journal from its submission on, so
// the core need not hold the wire encoding of millions of queued tasks:
// while more than keepLoaded tasks are queued, tasks are queued without
// it ("spilled"), and from then on every new one until all have been
// loaded again. When dispatch comes to a spilled task at the head of the
// queue it stops, and the core asks for a load: the journal's tasks after
// it, in id order, loadBatch at a time, read off the loop like a results
// read (kind load); a load that brought tasks in asks for the next while
// fewer than keepLoaded are loaded, so that dispatch seldom waits. Only
// committed tasks are read. Loads also run ahead of dispatch: whenever
// fewer than half of keepLoaded queued tasks are loaded, the run of
// spilled tasks is read on from where the last load ended (loadNext).

const (
	defaultKeepLoaded = 100_000
	defaultLoadBatch  = 20_000
)

func (s *state) keepLoaded() int {
	if s.cfg.KeepLoaded > 0 {
		return s.cfg.KeepLoaded
	}
	return defaultKeepLoaded
}

func (s *state) loadBatch() int {
	if s.cfg.LoadBatch > 0 {
		return s.cfg.LoadBatch
	}
	return defaultLoadBatch
}

// loadedQueued is about how many queued tasks hold their encoding (the
// queue's count includes entries of tasks cancelled while queued).
func (s *state) loadedQueued() int { return s.queue.Len() - s.spilled }

// spill reports whether a task entering the queue now goes without its
// encoding.
func (s *state) spill() bool {
	return s.spilled > 0 || s.loadedQueued() >= s.keepLoaded()
}

// encodeTask gives a task its wire encoding.
func (s *state) encodeTask(t *task, jt *journal.Task) {
	w := &wire.Task{Id: t.id, JobId: t.jobID, TimeoutMs: t.timeoutMs, ArrayIndex: jt.ArrayIndex, Noop: jt.Noop,
		StdoutPath: jt.StdoutPath, StderrPath: jt.StderrPath, Cores: int32(jt.Cores), Gpus: int32(jt.GPUs), MemBytes: jt.MemBytes,
		RanksPerNode: int32(jt.RanksPerNode)}
	w.SetArgs(jt.Argv)
	w.SetEnvs(jt.Env)
	w.SetDir(jt.Cwd)
	t.setFields(s.arena.fieldsOf(w))
}

// readAhead reports whether spilled tasks may be loaded before dispatch
// reaches them. Not while restored tasks are held (resume.go): they are
// counted spilled but are not in the queue yet, and reading ahead would
// load every one of them.
func (s *state) readAhead() bool {
	return !s.holding && !s.loadWanted && !s.loading && s.spilled > 0 && s.loadNext != 0
}

// spillTask queues a task without its encoding.
func (s *state) spillTask(t *task) {
	s.spilled++
	if s.loadNext == 0 {
		s.loadNext = t.id
	}
}

// leaveQueue is called when a queued task stops being queued other than
// by dispatch (which takes loaded tasks only).
func (s *state) leaveQueue(t *task) {
	if !t.fields().loaded() {
		s.spilled--
	}
}

// wantLoad records that the tasks from id on are needed.
func (s *state) wantLoad(id uint64) {
	if !s.loading && (!s.loadWanted || id < s.loadFrom) {
		s.loadWanted, s.loadFrom = true, id
	}
}

// requestLoad asks the driver for the wanted load once its first task is
// committed and no load is in flight; with none wanted, it reads ahead.
func (s *state) requestLoad() {
	if s.readAhead() && s.loadedQueued() < s.keepLoaded()/2 {
		s.wantLoad(s.loadNext)
	}
	if !s.loadWanted || s.loading || s.loadFrom > s.committedTask {
		return
	}
	s.loadWanted, s.loading = false, true
	s.reads = append(s.reads, readReq{load: true, after: s.loadFrom - 1, limit: s.loadBatch()})
}

// tasksLoaded gives the spilled tasks among rows their encoding and asks
// for the next batch while the run of spilled tasks goes on.
func (s *state) tasksLoaded(q readReq, rows []journal.Row, err error) {
	s.loading = false
	if err != nil {
		s.log.Error("loading queued tasks from the journal failed; trying again", "after", q.after, "err", err)
		s.wantLoad(q.after + 1)
		return
	}
	n := 0
	var last uint64
	for _, row := range rows {
		id := uint64(row.Task.ID)
		last = id
		if t := s.tasks.get(id); t != nil && !t.fields().loaded() {
			if err := unsendableTask(&row.Task); err != nil { // from an older htex
				if t.state == stQueued {
					s.finish(t, &wire.Result{TaskId: t.id, ErrorKind: wire.ErrorKind_SPAWN, ExitCode: -1, Error: err.Error()}, nil)
				}
				continue
			}
			s.encodeTask(t, &row.Task)
			if t.state == stQueued {
				s.spilled--
			}
			n++
		}
	}
	switch {
	case s.spilled == 0:
		s.loadNext = 0
	case n > 0 && q.after+1 <= s.loadNext && last+1 > s.loadNext:
		s.loadNext = last + 1 // the run read ahead goes on from here
	}
	if n > 0 && s.readAhead() && s.loadedQueued() < s.keepLoaded() {
		s.wantLoad(last + 1)
	}
}
