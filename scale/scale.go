// Package scale decides how many blocks the daemon should run. Decide is a
// pure function from what is observed (tasks, blocks, pools' idleness) to
// actions; the daemon's loop gathers the observations and applies them.
package scale

import (
	"fmt"
	"math"
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

// Block is what the loop observed of one live (not ended) block.
type Block struct {
	ID        int64
	Pending   bool      // no pool has registered yet
	Draining  bool      // every pool of the block is draining: it will end soon
	Slots     int       // registered slots
	Busy      int       // tasks held by its pools
	IdleSince time.Time // zero when busy or when it has no pools
}

// Input is one observation.
type Input struct {
	Now           time.Time
	First         bool // the first decision of this daemon
	Tasks         int  // queued + running
	Blocks        []Block
	SlotsPerBlock int  // observed slots of one block; 0 = unknown
	Halted        bool // too many failed blocks: submit nothing
}

// Decision is what to do now.
type Decision struct {
	Submit  int
	Cancel  []int64
	Wanted  int
	Summary string
}

// Decide computes the actions for one observation.
func Decide(p Policy, in Input) Decision {
	live := 0
	for _, b := range in.Blocks {
		if !b.Draining {
			live++
		}
	}
	d := Decision{Wanted: live}
	spb := in.SlotsPerBlock
	if spb <= 0 {
		spb = max(1, p.NodesPerBlock)
	}
	switch {
	case in.First:
		d.Wanted = p.InitBlocks
	case p.Kind == None:
		d.Wanted = live
	default:
		w := int(math.Ceil(float64(in.Tasks) * p.Parallelism / float64(spb)))
		if in.Tasks > 0 && w == 0 {
			w = 1 // work waits: at least one block
		}
		d.Wanted = min(max(w, p.MinBlocks), p.MaxBlocks)
	}
	if in.First {
		d.Submit = max(0, p.InitBlocks-live)
	} else if d.Wanted > live {
		d.Submit = d.Wanted - live
	}
	if in.Halted {
		d.Submit = 0
	}
	if !in.First && p.Kind != None && d.Wanted < live {
		excess := live - max(d.Wanted, p.MinBlocks)
		// Pending blocks go first when there is no work for them, then
		// blocks idle for at least max_idletime. A busy block is never
		// cancelled.
		for _, b := range in.Blocks {
			if excess == 0 {
				break
			}
			if b.Pending && !b.Draining && in.Tasks == 0 {
				d.Cancel = append(d.Cancel, b.ID)
				excess--
			}
		}
		for _, b := range in.Blocks {
			if excess == 0 {
				break
			}
			if !b.Pending && !b.Draining && b.Busy == 0 && !b.IdleSince.IsZero() && in.Now.Sub(b.IdleSince) >= p.MaxIdletime {
				d.Cancel = append(d.Cancel, b.ID)
				excess--
			}
		}
	}
	d.Summary = fmt.Sprintf("%s: tasks=%d slots/block=%d parallelism=%g live=%d wanted=%d (min %d, max %d) submit=%d cancel=%v",
		p.Kind, in.Tasks, spb, p.Parallelism, live, d.Wanted, p.MinBlocks, p.MaxBlocks, d.Submit, d.Cancel)
	if in.Halted {
		d.Summary += " [halted: too many failed blocks]"
	}
	return d
}
