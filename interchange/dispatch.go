package interchange

import (
	"time"
)

// Dispatch. The pools that may take tasks now (free capacity, not
// draining, due a refill) wait in a ring, in the order they became ready;
// dispatch serves them from its front and puts back at the end one that
// can take more, so a dispatch costs the number of pools it feeds, not the
// number of pools there are, and no pool waits behind another twice. A
// pool enters the ring when it registers and when results free its
// capacity (markReady); one that stopped wanting tasks (it drains, it is
// gone) leaves when it comes to the front.

// poolRing is a FIFO of pools.
type poolRing struct {
	q    []*pool
	head int
}

func (r *poolRing) len() int { return len(r.q) - r.head }

func (r *poolRing) push(p *pool) { r.q = append(r.q, p) }

func (r *poolRing) pop() *pool {
	p := r.q[r.head]
	r.q[r.head] = nil
	r.head++
	if r.head == len(r.q) {
		r.q, r.head = r.q[:0], 0
	} else if r.head >= 1024 && 2*r.head >= len(r.q) {
		n := copy(r.q, r.q[r.head:])
		clear(r.q[n:])
		r.q, r.head = r.q[:n], 0
	}
	return p
}

// wants reports whether a pool may take tasks now: it has free capacity
// and is not reserved for a task of a size (sizes.go).
func (s *state) wants(p *pool) bool {
	free := p.capacity - s.used(p)
	return !p.gone && p.gang == nil && p.resv == nil && free > 0 && !s.draining(p) && s.refillDue(p, free)
}

// markReady puts a pool in the ring if it may take tasks and is not there.
func (s *state) markReady(p *pool) {
	if !p.inReady && s.wants(p) {
		p.inReady = true
		s.ready.push(p)
	}
}

// dispatch hands queued tasks to the ready pools, in turn, after the
// tasks of a size that wait (sizes.go). It stops at a spilled task
// (spill.go) until it is loaded.
func (s *state) dispatch() {
	s.serveWaiting()
	s.stalled = false
	if len(s.gangs.list) > 0 {
		s.gangStep()
	}
	for n := s.ready.len(); n > 0 && s.queue.Len() > 0 && !s.stalled; n-- {
		p := s.ready.pop()
		p.inReady = false
		if !s.wants(p) {
			continue
		}
		s.fill(p)
		s.markReady(p) // the queue ran dry or held nothing that fits it
	}
}

// fill hands a pool queued tasks up to its free capacity, in priority
// order, skipping those whose time limit does not fit its block. A task of
// a size that the pool cannot take now goes to the waiting list (sizes.go),
// which may reserve this pool for it: then the filling stops.
func (s *state) fill(p *pool) {
	free := p.capacity - s.used(p)
	var fields [][]byte
	var attempts []int32
	var aside []*task
	skipped := 0
	for free > 0 {
		t := s.queue.pop()
		if t == nil {
			break
		}
		if !t.fields().loaded() {
			s.queue.push(t) // first again
			s.wantLoad(t.id)
			s.stalled = true
			break
		}
		if t.shape != 0 && s.gangTake(t) { // a multi-node task (gang.go)
			if p.gang != nil {
				break // p is reserved for it
			}
			continue
		}
		w, f := 1, t.fields().bytes()
		if t.shape != 0 {
			var ok bool
			if w, ok = s.sizedFits(t, p); !ok {
				s.wait(t)
				if p.resv != nil {
					break
				}
				continue
			}
			f = sizedFields(t, w)
		} else if !s.fits(t, p) {
			aside = append(aside, t)
			if skipped++; skipped > 256 {
				break
			}
			continue
		}
		s.start(t, p, w)
		free -= w
		fields = append(fields, f)
		attempts = append(attempts, int32(t.attempts))
	}
	for _, t := range aside {
		s.queue.push(t)
	}
	if len(fields) > 0 {
		p.idleSince = time.Time{}
		for _, f := range taskFrames(fields, attempts) {
			s.sendRaw(toPool, p.ident, f)
		}
	}
}

// start marks a task dispatched to p, charged w slots.
func (s *state) start(t *task, p *pool, w int) {
	if t.shape != 0 {
		s.queuedExtra -= s.extraSlots(t)
	}
	t.state = stRunning
	t.pool = p
	t.attempts++
	t.dispatched = s.now.UnixNano()
	if o := s.cfg.Observer; o != nil {
		if ns := s.tasks.submittedAt(t); ns != 0 {
			o.TaskDispatched(s.now.Sub(time.Unix(0, ns)))
		}
	}
	p.running[t.id] = t
	p.used += w
}

// refillDue reports whether a pool with free capacity should get tasks
// now: at once when a slot may be idle, but its prefetch buffer only once
// half of it is free, so that a busy pool gets one Tasks message per many
// results instead of one per result.
func (s *state) refillDue(p *pool, free int) bool {
	prefetch := p.capacity - int(p.reg.Slots)
	return s.used(p) < int(p.reg.Slots) || free >= max(1, prefetch/2)
}

// draining reports whether a pool takes no new tasks: it drains (it said
// so, or it was told to), or its block ends within the drain period. The
// pool drains itself then, but its notice may still be on its way.
func (s *state) draining(p *pool) bool {
	if p.draining {
		return true
	}
	dp := s.cfg.DrainPeriod
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
	if p.blockEnd.IsZero() || t.timeoutMs <= 0 {
		return true
	}
	return !s.now.Add(time.Duration(t.timeoutMs)*time.Millisecond + fitMargin).After(p.blockEnd)
}
