// Package scale decides how many blocks the daemon should run. Decide is a
// pure function from what is observed (tasks, blocks, pools' idleness, the
// clock) to actions; the daemon's loop (daemon/blocks.go) gathers the
// observations, applies the actions and keeps no policy of its own.
//
// The rules (SPEC.md "Blocks and scaling", Parsl's _general_strategy):
//
//   - The first decision submits init_blocks (less the blocks a restarted
//     daemon adopted). Strategy none never does anything after that.
//   - A block is live while it is pending or has a pool that is not
//     draining. A block whose pools all drain (walltime near, scale-in) or
//     all left is ending: it does not count, so a replacement is submitted
//     while work remains. For a short while that can mean more than
//     max_blocks batch jobs, the extra ones finishing their last tasks.
//   - Wanted blocks for q queued+running tasks and s slots per block:
//     ceil(q × parallelism / s), at least 1 while q > 0, clamped to
//     [min_blocks, max_blocks]. Missing live blocks are submitted, unless
//     the daemon halted after too many failed blocks.
//   - Scale-in cancels at most live − wanted blocks, never going below
//     min_blocks, and only blocks that are idle for at least max_idletime:
//     a registered block whose every pool has had no task for that long,
//     or a pending block (no pool yet) submitted that long ago and, when no
//     work is left, with no work for that long. A block holding a task is
//     never chosen. Pending blocks go first (newest first: the older ones
//     are nearer to starting), then the longest idle.
//   - simple scales in only when no work is left at all (q = 0), like
//     Parsl's simple strategy. htex_auto_scale also scales in while work
//     remains: when live blocks have more slots than q × parallelism needs,
//     the surplus idle blocks go, as Parsl's htex_auto_scale does (but
//     never a busy block, and only after max_idletime).
package scale

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Strategy kinds.
const (
	None          = "none"
	Simple        = "simple"
	HtexAutoScale = "htex_auto_scale"
)

// Policy holds the scaling options.
type Policy struct {
	Kind          string
	InitBlocks    int
	MinBlocks     int
	MaxBlocks     int
	Parallelism   float64
	MaxIdletime   time.Duration
	NodesPerBlock int
}

// Block is what the loop observed of one block that has not ended and was
// not cancelled.
type Block struct {
	ID        int64
	Pending   bool      // no pool of it is registered (yet)
	Draining  bool      // every pool of the block drains or left: it ends soon
	Submitted time.Time // when the daemon submitted it
	Slots     int       // registered slots
	Busy      int       // tasks held by its pools
	IdleSince time.Time // registered block: since when no pool holds a task; zero while one does
}

// Input is one observation.
type Input struct {
	Now   time.Time
	First bool // the first decision of this daemon
	Tasks int  // queued + running
	// NoWorkSince is since when Tasks has been 0 (zero, or ignored, while
	// Tasks > 0). Zero with Tasks == 0 means "since now".
	NoWorkSince   time.Time
	Blocks        []Block
	SlotsPerBlock int  // observed slots of one block; 0 = unknown
	Halted        bool // too many failed blocks: submit nothing
}

// Decision is what to do now.
type Decision struct {
	Submit  int
	Cancel  []int64
	Live    int // blocks counted as live
	Wanted  int
	Summary string
}

// Wanted is the number of blocks a strategy other than none wants for tasks
// queued+running tasks with slotsPerBlock slots in each block:
// ceil(tasks × parallelism / slotsPerBlock), at least 1 while tasks wait,
// clamped to [min_blocks, max_blocks].
func Wanted(p Policy, tasks, slotsPerBlock int) int {
	w := 0
	if tasks > 0 {
		w = int(math.Ceil(float64(tasks) * p.Parallelism / float64(max(slotsPerBlock, 1))))
		w = max(w, 1) // parallelism 0: one block, as Parsl does
	}
	return min(max(w, p.MinBlocks), p.MaxBlocks)
}

// Decide computes the actions for one observation.
func Decide(p Policy, in Input) Decision {
	live := 0
	draining := 0
	for _, b := range in.Blocks {
		if b.Draining {
			draining++
		} else {
			live++
		}
	}
	spb := in.SlotsPerBlock
	if spb <= 0 {
		spb = max(1, p.NodesPerBlock) // unknown: assume one slot per node
	}
	d := Decision{Live: live, Wanted: live}
	switch {
	case in.First:
		d.Wanted = p.InitBlocks
	case p.Kind == None:
	default:
		d.Wanted = Wanted(p, in.Tasks, spb)
	}
	if d.Wanted > live && !in.Halted {
		d.Submit = d.Wanted - live
	}
	scaleIn := !in.First && p.Kind != None && (in.Tasks == 0 || p.Kind == HtexAutoScale)
	waiting := 0 // surplus idle blocks still short of max_idletime
	if excess := live - max(d.Wanted, p.MinBlocks); scaleIn && excess > 0 {
		d.Cancel, waiting = pick(p, in, excess)
	}
	d.Summary = fmt.Sprintf("%s: tasks=%d slots/block=%d parallelism=%g live=%d draining=%d wanted=%d (min %d, max %d) submit=%d cancel=%v",
		p.Kind, in.Tasks, spb, p.Parallelism, live, draining, d.Wanted, p.MinBlocks, p.MaxBlocks, d.Submit, d.Cancel)
	if waiting > 0 {
		d.Summary += fmt.Sprintf(" (%d more idle, waiting for max_idletime %s)", waiting, p.MaxIdletime)
	}
	if in.Halted {
		d.Summary += " [halted: too many failed blocks, submitting none]"
	}
	return d
}

// pick chooses up to n blocks to cancel; it also returns how many surplus
// blocks are idle but not yet for max_idletime.
func pick(p Policy, in Input, n int) ([]int64, int) {
	noWork := in.NoWorkSince
	if noWork.IsZero() {
		noWork = in.Now
	}
	type cand struct {
		b    Block
		idle time.Time
	}
	var cands []cand
	for _, b := range in.Blocks {
		if b.Draining || b.Busy > 0 {
			continue
		}
		var idle time.Time
		switch {
		case b.Pending:
			idle = b.Submitted
			if in.Tasks == 0 && noWork.After(idle) {
				idle = noWork
			}
		case b.IdleSince.IsZero():
			continue // a pool holds a task
		default:
			idle = b.IdleSince
		}
		cands = append(cands, cand{b, idle})
	}
	sort.Slice(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.b.Pending != b.b.Pending {
			return a.b.Pending
		}
		if a.b.Pending {
			return a.b.ID > b.b.ID
		}
		if !a.idle.Equal(b.idle) {
			return a.idle.Before(b.idle)
		}
		return a.b.ID > b.b.ID
	})
	var ids []int64
	waiting := 0
	for _, c := range cands {
		if len(ids) == n {
			break
		}
		if in.Now.Sub(c.idle) >= p.MaxIdletime {
			ids = append(ids, c.b.ID)
		} else {
			waiting++
		}
	}
	return ids, min(waiting, n-len(ids))
}
