package worker

import (
	"maps"
	"strconv"
	"strings"

	"github.com/htex/htex/pinning"
	"github.com/htex/htex/wire"
)

// Placement of tasks of a size on the pool's slots: pure functions, no
// I/O (table tests in place_test.go). The board (board.go) calls them
// under its lock; the slot that runs a task applies what they chose.

// sized reports whether a task asks for more than one slot's default: a
// size, a charge of several slots, or the whole node (a multi-node task).
func sized(t *wire.Task) bool {
	return t.Cores != 0 || t.Gpus != 0 || t.MemBytes != 0 || t.Slots > 1 || len(t.MpiNodes) > 0
}

// slotsFor is the number of slots a task takes in a pool of shape sh:
// the charge the interchange gave it (Task.slots) or the pool's own by
// the same rule (max(1, ceil(cores/CPUs), ceil(gpus/GPUs), ceil(mem/
// memory)) of its smallest slot), the larger, and at most every slot.
func slotsFor(t *wire.Task, sh pinning.Shape) int {
	if len(t.MpiNodes) > 0 { // the whole node (mpi.go)
		return max(sh.Slots, 1)
	}
	n := max(1, int(t.Slots))
	if t.Cores > 0 {
		n = max(n, ceilDiv(int(t.Cores), max(sh.CPUs, 1)))
	}
	if t.Gpus > 0 && sh.GPUs > 0 {
		n = max(n, ceilDiv(int(t.Gpus), sh.GPUs))
		if sh.SlotsPerGPU > 1 { // whole GPUs of slots that share them (MPS)
			n = max(n, int(t.Gpus)*sh.SlotsPerGPU)
		}
	}
	if t.MemBytes > 0 && sh.MemBytes > 0 {
		n = max(n, int(min(int64(sh.Slots), (t.MemBytes+sh.MemBytes-1)/sh.MemBytes)))
	}
	return min(n, max(sh.Slots, 1))
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// pickSlots chooses n of the free slots (free[rank]) for one task, as
// compactly as possible: among the windows of n consecutive free slots
// (in rank order, which is the affinity order of their CPUs), the first
// that stays in one group (socket; group nil = one group) and spans the
// fewest ranks, else the first that spans the fewest. Adjacent free slots
// in one socket win when there are any. For a task that asks for GPUs
// (devs: each slot's devices; nil when it asks for none) a window whose
// GPUs no busy slot shares (through MPS) wins over any other, so that it
// gets GPUs of its own where it can. nil when fewer than n are free.
func pickSlots(free []bool, group []int, devs [][]string, n int) []int {
	if n < 1 {
		return nil
	}
	var ranks []int
	for r, f := range free {
		if f {
			ranks = append(ranks, r)
		}
	}
	if len(ranks) < n {
		return nil
	}
	best, bestShared, bestCross, bestSpan := -1, true, true, 0
	for i := 0; i+n <= len(ranks); i++ {
		w := ranks[i : i+n]
		shared := devs != nil && sharesBusy(w, free, devs)
		cross := false
		if group != nil {
			for _, r := range w[1:] {
				if group[r] != group[w[0]] {
					cross = true
					break
				}
			}
		}
		span := w[n-1] - w[0]
		better := best < 0 || !shared && bestShared ||
			shared == bestShared && (!cross && bestCross || cross == bestCross && span < bestSpan)
		if better {
			best, bestShared, bestCross, bestSpan = i, shared, cross, span
		}
	}
	return append([]int(nil), ranks[best:best+n]...)
}

// sharesBusy reports whether a busy slot has a device of the window w.
func sharesBusy(w []int, free []bool, devs [][]string) bool {
	mine := map[string]bool{}
	for _, r := range w {
		for _, d := range devs[r] {
			mine[d] = true
		}
	}
	for r, f := range free {
		if f {
			continue
		}
		for _, d := range devs[r] {
			if mine[d] {
				return true
			}
		}
	}
	return false
}

// taskCPUs returns the CPUs of a task placed on the slots ranks: the
// first n of the slots' CPUs taken in slot order (each slot's in its
// affinity order), or all of them when n is 0 or more than they hold;
// nil when the slots are not pinned.
func taskCPUs(slots []pinning.Slot, ranks []int, n int) []int {
	var cpus []int
	for _, r := range ranks {
		cpus = append(cpus, slots[r].CPUs...)
	}
	if n > 0 && n < len(cpus) {
		cpus = cpus[:n]
	}
	return cpus
}

// taskDevices returns the accelerators of a task placed on the slots
// ranks: the first n distinct devices of the slots' entries in slot
// order, or all of them when n is 0 or more than there are (slots that
// share one GPU through MPS give it once).
func taskDevices(slots []pinning.Slot, ranks []int, n int) []string {
	var devs []string
	seen := map[string]bool{}
	for _, r := range ranks {
		for _, d := range pinning.Devices(slots[r].Accelerator) {
			if !seen[d] {
				seen[d] = true
				devs = append(devs, d)
			}
		}
	}
	if n > 0 && n < len(devs) {
		devs = devs[:n]
	}
	return devs
}

// placedEnv returns the variables of a task placed on cpus (nil: the
// slots are not pinned) and devs, with cores CPUs asked for (0 = not
// asked), on a node of the given (resolved) accelerator vendor; accel says
// whether the pool's slots have accelerators at all (else no device
// variable is set, as for a slot). The OpenMP variables are those a slot
// pinned to exactly cpus would give (pinning.CPUEnv); without pinning only
// OMP_NUM_THREADS, and only when cores were asked for. unset lists the
// variables the task must not inherit (pinning.AcceleratorEnv).
func placedEnv(cpus []int, cores int, devs []string, accel bool, vendor string) (env map[string]string, unset []string) {
	env = map[string]string{}
	switch {
	case cpus != nil:
		env = pinning.CPUEnv(cpus)
	case cores > 0:
		env["OMP_NUM_THREADS"] = strconv.Itoa(cores)
	}
	if accel {
		set, un := pinning.AcceleratorEnv(vendor, strings.Join(devs, ","))
		maps.Copy(env, set)
		unset = un
	}
	return env, unset
}
