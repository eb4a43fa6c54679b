package pinning

import (
	"math"
	"slices"
	"strings"
)

// Shape is what a pool offers tasks of a size (submit --cores, --gpus,
// --mem): its number of slots and what one slot holds. A task is charged
// the whole slots that cover it (docs/task-sizes.md), so a slot's share is
// counted from the smallest slot: a task charged k slots gets at least k
// times it, whichever slots it gets.
type Shape struct {
	Slots int
	// CPUs of the smallest slot; without pinning (cpu_affinity none) the
	// node's CPUs shared evenly, floor(CPUs/slots), at least 1.
	CPUs int
	// Accelerator devices of the slot with the fewest (an entry "0,1" is
	// two); 0 without accelerators. Slots of one GPU shared through MPS
	// count one each.
	GPUs int
	// Memory of one slot in bytes: mem_per_worker when set, else the
	// node's memory shared evenly (rounded up to a whole byte).
	MemBytes int64
	// SlotsPerGPU: when the slots share GPUs through MPS (Oversubscribed),
	// how many slots share one GPU at most, ceil(slots/GPUs); 0 otherwise.
	// A task of G GPUs takes G times that many slots: whole GPUs.
	SlotsPerGPU int
}

// Shape returns the shape of the layout on node with opts (those given to
// Plan).
func (l *Layout) Shape(node Node, opts Options) Shape {
	n := len(l.Slots)
	sh := Shape{Slots: n}
	if n == 0 {
		return sh
	}
	cpus := slices.Compact(slices.Sorted(slices.Values(node.CPUs)))
	sh.CPUs = max(1, len(cpus)/n)
	if l.Slots[0].CPUs != nil { // pinned: the smallest slot
		sh.CPUs = math.MaxInt
		for _, s := range l.Slots {
			sh.CPUs = min(sh.CPUs, len(s.CPUs))
		}
	}
	gpus := math.MaxInt
	for _, s := range l.Slots {
		gpus = min(gpus, len(Devices(s.Accelerator)))
	}
	sh.GPUs = gpus
	if l.Oversubscribed && opts.GPUs > 0 {
		sh.SlotsPerGPU = (n + opts.GPUs - 1) / opts.GPUs
	}
	gib := node.MemoryGB / float64(n)
	if opts.MemPerWorker > 0 {
		gib = opts.MemPerWorker
	}
	// Rounded up: the slots' shares add up to at least the node's memory,
	// so that a task asking for all of it is charged all the slots, not
	// one more than there are.
	sh.MemBytes = int64(math.Ceil(gib * (1 << 30)))
	return sh
}

// Devices splits an accelerator entry into its devices ("0,1" → 0 and 1;
// "" → none).
func Devices(entry string) []string {
	if strings.TrimSpace(entry) == "" {
		return nil
	}
	var out []string
	for _, d := range strings.Split(entry, ",") {
		if d = strings.TrimSpace(d); d != "" {
			out = append(out, d)
		}
	}
	return out
}

// CPUEnv returns the OpenMP variables of a task pinned to cpus (in the
// order given): OMP_NUM_THREADS, GOMP_CPU_AFFINITY, KMP_AFFINITY,
// OMP_PLACES and OMP_PROC_BIND, as a slot's tasks get them.
func CPUEnv(cpus []int) map[string]string {
	env := map[string]string{}
	setCPUEnv(env, cpus)
	return env
}

// DeviceCount is the number of distinct accelerator devices of the
// layout's slots.
func (l *Layout) DeviceCount() int {
	seen := map[string]bool{}
	for _, s := range l.Slots {
		for _, d := range Devices(s.Accelerator) {
			seen[d] = true
		}
	}
	return len(seen)
}

// CPURange is CPUs 0 to n-1: a Node's CPUs where only their number is
// known (a config's cores per node, the CPU count a pool was given), as
// Shape needs no more.
func CPURange(n int) []int {
	cpus := make([]int, n)
	for i := range cpus {
		cpus[i] = i
	}
	return cpus
}
