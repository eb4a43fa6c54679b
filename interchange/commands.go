package interchange

import (
	"github.com/htex/htex/journal"
	"github.com/htex/htex/wire"
)

// State is the view of the loop's state given to functions run with Do.
// Its methods must only be called inside such a function.
type State struct{ s *state }

// BlockEnded removes the pools of a block the scheduler reports as ended
// (without waiting for their heartbeats to lapse) and retries their tasks.
func (st *State) BlockEnded(blockID int64, why string) {
	st.s.formerBlockEnded(blockID, why, st.s.now)
	for _, p := range append([]*pool(nil), st.s.poolOrder...) {
		if p.reg.BlockId == blockID {
			st.s.lose(p, why)
		}
	}
}

// DrainBlock tells the pools of a block to take no new tasks and exit when
// idle (scale-in). Pools of the block that register later (the block was
// starting as it was cancelled) are drained as they register.
func (st *State) DrainBlock(blockID int64) {
	if st.s.drainBlocks == nil {
		st.s.drainBlocks = map[int64]bool{}
	}
	st.s.drainBlocks[blockID] = true
	for _, p := range st.s.poolOrder {
		if p.reg.BlockId == blockID {
			p.draining = true
			st.s.toPool(p.ident, &wire.Envelope{Body: &wire.Envelope_Drain{Drain: &wire.Drain{}}})
		}
	}
}

// DrainIdleBlock is DrainBlock for scale-in: it drains the block only when
// none of its pools holds a task, and reports whether it did. Checked and
// done in one step of the loop, so no task is dispatched in between.
func (st *State) DrainIdleBlock(blockID int64) bool {
	for _, p := range st.s.poolOrder {
		if p.reg.BlockId == blockID && (len(p.running) > 0 || p.gang != nil) { // held for a multi-node task: not idle
			return false
		}
	}
	st.DrainBlock(blockID)
	return true
}

// StopDispatch stops handing out tasks (daemon shutdown).
func (st *State) StopDispatch() {
	for _, p := range st.s.poolOrder {
		p.draining = true
	}
}

// Running is the number of tasks held by pools.
func (st *State) Running() int {
	n := 0
	for _, p := range st.s.poolOrder {
		n += len(p.running)
	}
	return n
}

// ShutdownPools tells every pool to exit.
func (st *State) ShutdownPools(reason string) {
	for _, p := range st.s.poolOrder {
		st.s.toPool(p.ident, &wire.Envelope{Body: &wire.Envelope_Shutdown{Shutdown: &wire.Shutdown{Reason: reason}}})
	}
}

// Event records an event in the journal.
func (st *State) Event(kind string, blockID int64, msg string) {
	st.s.event(kind, blockID, "", 0, msg)
}

// RecordBlock writes a block's record to the journal.
func (st *State) RecordBlock(b journal.Block) {
	st.s.pending.Blocks = append(st.s.pending.Blocks, b)
}
