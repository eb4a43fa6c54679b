package interchange

import (
	"time"

	"github.com/htex/htex/journal"
	"github.com/htex/htex/wire"
)

// Restart. A daemon started again on a run directory restores from the
// journal every task without a result, as queued. Some of them are still
// running, or waiting, in pools of the previous daemon that survived it:
// those pools reconnect (the daemon binds the same ports), are asked to
// register again, and report the tasks they hold and the results the dead
// daemon never committed. Until every such pool has done so, the restored
// tasks are held back from dispatch: otherwise the first pool back would be
// handed tasks another surviving pool is still running. The hold ends when
// the last expected pool has registered, or after heartbeat_threshold: a
// pool silent that long is lost, and what it ran runs again.

// formerPool is a pool the journal knew as connected when this daemon
// started, until it registers again or is given up.
type formerPool struct {
	stand *pool        // stands in for it when its results come before it registers
	rec   journal.Pool // its journal row
}

// forgetBlocks is the event of ForgetBlocks.
func (s *state) forgetBlocks(blocks []int64, now time.Time) {
	s.at(now)
	for _, b := range blocks {
		s.formerBlockEnded(b, "its block ended while no daemon was running", s.now)
	}
}

// loadFormer records the pools the journal knows as connected and starts
// the hold of the restored tasks.
func (s *state) loadFormer(pools []journal.Pool, restored []*task, now time.Time) {
	s.former = make(map[string]*formerPool, len(pools))
	for _, jp := range pools {
		s.former[jp.ID] = &formerPool{rec: jp, stand: &pool{id: jp.ID, ident: []byte(jp.ID),
			reg: &wire.Register{PoolId: jp.ID, BlockId: jp.BlockID, Node: jp.Node, Hostname: jp.Hostname}}}
	}
	s.restored, s.holding = restored, true
	s.holdUntil = now.Add(s.cfg.HeartbeatThreshold)
}

// formerBlockEnded gives up the former pools of a block that ended.
func (s *state) formerBlockEnded(blockID int64, why string, now time.Time) {
	for _, id := range sortedKeys(s.former) {
		f := s.former[id]
		if f.rec.BlockID == blockID {
			s.giveUp(f, now, why)
		}
	}
	s.releaseRestored(now)
}

// registered is called when a pool registers: a former pool is back.
func (s *state) registered(p *pool) {
	if _, ok := s.former[p.id]; ok {
		delete(s.former, p.id)
		s.releaseRestored(s.now)
	}
}

// formerStand returns the stand-in of a former pool that has not
// registered again, or nil.
func (s *state) formerStand(id string) *pool {
	if f := s.former[id]; f != nil {
		return f.stand
	}
	return nil
}

// releaseRestored ends the hold once no former pool is awaited or its time
// is up (checked again by tick).
func (s *state) releaseRestored(now time.Time) {
	if !s.holding {
		return
	}
	if len(s.former) > 0 && now.Before(s.holdUntil) {
		return
	}
	for _, id := range sortedKeys(s.former) {
		f := s.former[id]
		s.log.Warn("a pool of the previous daemon did not register again: the tasks it was running will run again",
			"pool", f.rec.ID, "block", f.rec.BlockID, "node", f.rec.Node)
		s.giveUp(f, now, "did not register again within heartbeat_threshold after the daemon restarted")
	}
	n := 0
	for _, t := range s.restored {
		if t.state == stQueued {
			s.queue.push(t)
			n++
		}
	}
	if len(s.restored) > 0 {
		s.log.Info("restored tasks released for dispatch", "queued", n, "restored", len(s.restored))
	}
	s.restored, s.holding = nil, false
}

// giveUp records a former pool as gone.
func (s *state) giveUp(f *formerPool, now time.Time, why string) {
	delete(s.former, f.rec.ID)
	rec := f.rec
	rec.LostAt = now
	s.pending.Pools = append(s.pending.Pools, rec)
	s.event("pool_lost", rec.BlockID, rec.ID, 0, why)
}
