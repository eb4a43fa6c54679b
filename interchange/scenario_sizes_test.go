package interchange

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/htex/htex/wire"
)

// Scenario helpers for tasks of a size (sizes.go).

// poolShapeArg parses config's shape=SLOTSxCPUS, shapegpus=N (per slot)
// and shapemem=SIZE (per slot).
func poolShapeArg(v string, a args) (PoolShape, error) {
	n, c, ok := strings.Cut(v, "x")
	slots, err1 := strconv.Atoi(n)
	cpus, err2 := strconv.Atoi(c)
	if !ok || err1 != nil || err2 != nil {
		return PoolShape{}, fmt.Errorf("shape=%q: want SLOTSxCPUS", v)
	}
	gpus, err := a.int("shapegpus", 0)
	if err != nil {
		return PoolShape{}, err
	}
	ps := PoolShape{Slots: slots, SlotCPUs: cpus, SlotGPUs: int(gpus), CPUs: slots * cpus, GPUs: slots * int(gpus)}
	if m, ok := a.kv["shapemem"]; ok {
		if ps.SlotMemBytes, err = wire.ParseMem(m); err != nil {
			return PoolShape{}, err
		}
		ps.MemBytes = ps.SlotMemBytes * int64(slots)
	}
	return ps, nil
}

// invariants checks the core's counters against what they count: each
// pool's used slots are the charges of the tasks it holds, and the extra
// slots of queued tasks (for the scaler) are theirs.
func (h *harness) invariants() error {
	s := h.s
	for _, p := range s.poolOrder {
		used := 0
		for _, t := range p.running {
			used += s.chargeOn(t, p)
		}
		if used != p.used {
			return fmt.Errorf("pool %s: used %d, its tasks are charged %d", p.id, p.used, used)
		}
	}
	extra := 0
	s.tasks.each(func(t *task) {
		if t.state == stQueued {
			extra += s.extraSlots(t)
		}
	})
	if extra != s.queuedExtra {
		return fmt.Errorf("queuedExtra %d, the queued tasks take %d extra slots", s.queuedExtra, extra)
	}
	return nil
}
