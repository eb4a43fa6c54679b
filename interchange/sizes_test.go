package interchange

import (
	"testing"

	"github.com/htex/htex/wire"
)

// TestWeight: the whole slots a task of a size is charged, and whether a
// pool of a shape can ever run it.
func TestWeight(t *testing.T) {
	const G = 1 << 30
	cpu16 := slotShape{slots: 16, cpus: 1, mem: 4 * G}
	polaris := slotShape{slots: 4, cpus: 8, gpus: 1, mem: 128 * G}
	mps := slotShape{slots: 16, cpus: 2, gpus: 1, mem: 32 * G, perGPU: 4}
	pairs := slotShape{slots: 2, cpus: 4, gpus: 2, mem: 8 * G}
	noMem := slotShape{slots: 4, cpus: 2}
	for _, c := range []struct {
		name string
		v    shape
		ps   slotShape
		w    int
		ok   bool
	}{
		{"no size: one slot", shape{}, cpu16, 1, true},
		{"1 core", shape{cores: 1}, cpu16, 1, true},
		{"8 cores of 1-CPU slots", shape{cores: 8}, cpu16, 8, true},
		{"all the pool", shape{cores: 16}, cpu16, 16, true},
		{"more cores than the pool", shape{cores: 17}, cpu16, 0, false},
		{"memory rounds up to whole slots", shape{memBytes: 4*G + 1}, cpu16, 2, true},
		{"memory of the whole pool", shape{memBytes: 64 * G}, cpu16, 16, true},
		{"more memory than the pool", shape{memBytes: 65 * G}, cpu16, 0, false},
		{"GPUs from a pool without", shape{gpus: 1}, cpu16, 0, false},
		{"the largest of cores, GPUs, memory", shape{cores: 9, gpus: 1, memBytes: G}, polaris, 2, true},
		{"2 GPUs, 1 a slot", shape{gpus: 2}, polaris, 2, true},
		{"5 GPUs on 4", shape{gpus: 5}, polaris, 0, false},
		{"a GPU shared by 4 slots (MPS) is 4 slots", shape{gpus: 1}, mps, 4, true},
		{"MPS: every GPU", shape{gpus: 4}, mps, 16, true},
		{"MPS: cores alone count slots", shape{cores: 3}, mps, 2, true},
		{"slots of 2 devices", shape{gpus: 3}, pairs, 2, true},
		{"memory from a pool that does not say its memory", shape{memBytes: 1}, noMem, 0, false},
		{"multi-node tasks are placed by whole pools", shape{nodes: 2}, cpu16, 0, false},
		{"a pool without slots", shape{cores: 1}, slotShape{}, 0, false},
		{"the largest sizes do not overflow", shape{cores: wire.MaxCores, gpus: wire.MaxGPUs, memBytes: wire.MaxMemBytes},
			slotShape{slots: 1 << 20, cpus: 1, gpus: 1, mem: 1, perGPU: 1 << 20}, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, ok := weight(c.v, c.ps)
			if w != c.w || ok != c.ok {
				t.Errorf("weight(%+v, %+v) = %d, %v; want %d, %v", c.v, c.ps, w, ok, c.w, c.ok)
			}
		})
	}
}
