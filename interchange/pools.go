package interchange

import (
	"errors"
	"syscall"
	"time"

	"github.com/htex/htex/journal"
	"github.com/htex/htex/wire"
)

// handleWorker handles one frame from a pool.
func (s *state) handleWorker(id, payload []byte) {
	m, err := wire.Decode(payload)
	if err != nil {
		var ve *wire.VersionError
		if errors.As(err, &ve) {
			s.log.Warn("refusing a pool of another protocol version", "err", err)
			s.toPool(id, &wire.Envelope{Body: &wire.Envelope_Refuse{Refuse: &wire.Refuse{Reason: err.Error()}}})
			return
		}
		s.log.Warn("dropping malformed pool message", "err", err, "bytes", len(payload))
		return
	}
	p := s.pools[string(id)]
	switch b := m.Body.(type) {
	case *wire.Envelope_Register:
		s.register(id, b.Register)
	case *wire.Envelope_Heartbeat:
		if p == nil {
			s.toPool(id, &wire.Envelope{Body: &wire.Envelope_Reregister{Reregister: &wire.Reregister{}}})
			return
		}
		p.lastSeen = s.now
		s.toPool(id, &wire.Envelope{Body: &wire.Envelope_HeartbeatReply{HeartbeatReply: &wire.HeartbeatReply{NowUnixMs: s.now.UnixMilli()}}})
	case *wire.Envelope_Results:
		s.resultsMsg(id, p, b.Results)
	case *wire.Envelope_Shutdown:
		if p != nil {
			s.log.Warn("pool left", "pool", p.id, "node", p.reg.Node, "block", p.reg.BlockId, "reason", b.Shutdown.Reason, "tasks", len(p.running))
			s.lose(p, "pool left: "+b.Shutdown.Reason)
		}
	case *wire.Envelope_DrainNotice:
		if p != nil {
			p.draining = true
			p.lastSeen = s.now
			s.poolsChanged()
			s.event("pool_draining", p.reg.BlockId, p.id, 0, "pool reached its drain period")
		}
	default:
		s.log.Warn("dropping unexpected message on the worker channel", "type", typeName(m))
	}
}

func (s *state) register(id []byte, r *wire.Register) {
	if r.PoolId == "" || string(id) != r.PoolId {
		s.log.Warn("refusing a registration whose pool id does not match its socket identity", "pool", r.PoolId)
		s.toPool(id, &wire.Envelope{Body: &wire.Envelope_Refuse{Refuse: &wire.Refuse{Reason: "pool id must equal the socket identity"}}})
		return
	}
	if r.Slots < 1 {
		s.log.Warn("refusing a pool without slots", "pool", r.PoolId)
		s.toPool(id, &wire.Envelope{Body: &wire.Envelope_Refuse{Refuse: &wire.Refuse{Reason: "a pool needs at least one slot"}}})
		return
	}
	p := s.pools[r.PoolId]
	if p == nil {
		p = &pool{id: r.PoolId, ident: append([]byte(nil), id...), running: map[uint64]*task{}}
		s.pools[p.id] = p
		s.poolOrder = append(s.poolOrder, p)
	}
	p.reg = r
	p.shape = poolShapeOf(r)
	p.capacity = int(r.Slots) + int(max(r.Prefetch, 0))
	s.poolsChanged()
	p.lastSeen = s.now
	p.idleSince = s.now
	if r.BlockEndUnixMs > 0 {
		p.blockEnd = time.UnixMilli(r.BlockEndUnixMs)
	}
	// Tasks the pool still runs from before a reconnect or a daemon restart
	// stay with it instead of running a second time.
	var stale []uint64
	for _, tid := range r.Running {
		t := s.tasks.get(tid)
		switch {
		case t == nil:
			stale = append(stale, tid)
		case t.state == stQueued:
			s.leaveQueue(t)
			s.queuedExtra -= s.extraSlots(t)
			t.state = stRunning
			t.pool = p
			t.attempts++
			t.dispatched = s.now.UnixNano()
			p.running[tid] = t
		case t.pool != p:
			stale = append(stale, tid)
		}
	}
	s.recount(p)
	if len(stale) > 0 {
		s.toPool(id, &wire.Envelope{Body: &wire.Envelope_CancelTasks{CancelTasks: &wire.CancelTasks{Ids: stale}}})
	}
	// Results the pool sent that were never acknowledged (lost with an
	// earlier daemon, or on a broken connection) count now, in the same
	// step as the registration, so that no dispatch comes in between.
	for _, m := range r.Unacked {
		s.resultsMsg(id, p, m)
	}
	s.registered(p)
	if len(p.running) > 0 {
		p.idleSince = time.Time{}
	}
	s.pending.Pools = append(s.pending.Pools, journal.Pool{ID: p.id, BlockID: r.BlockId, Node: r.Node, Hostname: r.Hostname,
		CPUs: int(r.Cpus), MemoryGB: r.MemoryGb, Slots: int(r.Slots), RegisteredAt: s.now})
	s.event("pool_registered", r.BlockId, p.id, 0, "")
	s.log.Info("pool registered", "pool", p.id, "node", r.Node, "block", r.BlockId, "slots", r.Slots,
		"cpus", r.Cpus, "held_tasks", len(r.Running))
	s.registeredBlocks = append(s.registeredBlocks, r.BlockId)
	if s.drainBlocks[r.BlockId] { // its block is being cancelled
		p.draining = true
		s.toPool(id, &wire.Envelope{Body: &wire.Envelope_Drain{Drain: &wire.Drain{}}})
	}
	s.markReady(p)
	s.toPool(id, &wire.Envelope{Body: &wire.Envelope_HeartbeatReply{HeartbeatReply: &wire.HeartbeatReply{NowUnixMs: s.now.UnixMilli()}}})
}

// resultsMsg handles one Results message of a pool and acknowledges it
// once the journal batch that holds its results has committed: until then
// the pool keeps the results to send them again.
func (s *state) resultsMsg(id []byte, p *pool, m *wire.Results) {
	s.results(string(id), p, m.Results)
	if m.Seq != 0 {
		s.posts = append(s.posts, post{ackPool: string(id), ackSeq: m.Seq})
	}
}

func (s *state) results(id string, p *pool, rs []*wire.Result) {
	if p != nil {
		p.lastSeen = s.now
	} else {
		// A pool of the previous daemon that has not registered again yet:
		// the journal says where it runs.
		p = s.formerStand(id)
	}
	for _, r := range rs {
		t := s.tasks.get(r.TaskId)
		switch {
		case t == nil:
			s.log.Debug("ignoring a result for a finished or unknown task", "pool", id, "task", r.TaskId)
			continue
		case t.state == stRunning && t.pool != nil && t.pool.id == id:
			delete(t.pool.running, t.id)
			t.pool.used -= s.chargeOn(t, t.pool)
			if t.pool.resv != nil {
				s.waitDirty = true // its reserved task may start now
			}
			t.pool.done++
			if len(t.pool.running) == 0 {
				t.pool.idleSince = s.now
			}
			s.markReady(t.pool)
		case t.state == stQueued && killedWithLostPool(r):
			// The attempt of a pool given up as lost was killed, by the
			// pool's supervisor (worker/supervise.go) or with its job: the
			// task is queued to run again, which is what it needs.
			s.log.Info("ignoring a killed attempt of a task queued again", "pool", id, "task", r.TaskId)
			continue
		case t.state == stQueued:
			// A pool from before a daemon restart, or one given up as lost,
			// finished the task: keep its result rather than run it again.
			t.attempts++
		default:
			s.log.Info("ignoring a result for a task another pool holds", "pool", id, "task", r.TaskId)
			continue
		}
		if t.shape != 0 && s.gangResult(t, r, p) { // its gang lost a pool (gang.go)
			continue
		}
		// The final attempt is recorded in the task's result row; attempts
		// holds the earlier ones (lost pools), so a task costs two rows.
		s.finish(t, r, p)
	}
}

func typeName(m *wire.Envelope) string {
	if m.Body == nil {
		return "none"
	}
	return string(m.ProtoReflect().WhichOneof(m.ProtoReflect().Descriptor().Oneofs().ByName("body")).Name())
}

// killedWithLostPool reports a result of an attempt ended by SIGKILL: what
// a stopped pool's supervisor does to the pool's tasks once the interchange
// has given the pool up.
func killedWithLostPool(r *wire.Result) bool {
	return r.ErrorKind == wire.ErrorKind_SIGNAL && syscall.Signal(r.Signal) == syscall.SIGKILL
}
