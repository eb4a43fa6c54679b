// Package pinning computes the layout of a worker pool on one node: how many
// slots (workers) it runs, the CPUs each slot is pinned to, the accelerator
// each slot owns, and the environment each slot's tasks get (SPEC.md "Slots",
// "cpu_affinity" and "Accelerators").
//
// The package is pure: it does no I/O, reads no environment variables and
// starts nothing. The caller describes the node (pinning/detect reads it from
// the machine, htexctl plan from flags) and applies the result.
package pinning

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// MaxSlots is the most slots Plan lays out on one node; asking for more (say
// cores_per_worker 0.0001 with affinity none) is an error rather than a
// pool of a million processes.
const MaxSlots = 1 << 16

// Names of the options that can limit the slot count, as Layout.LimitedBy
// and Bound.Option give them.
const (
	LimitMaxWorkers   = "max_workers_per_node"
	LimitCores        = "cores_per_worker"
	LimitMemory       = "mem_per_worker"
	LimitAccelerators = "available_accelerators"
)

// Options are the executor options that shape a pool (see config.Executor).
type Options struct {
	MaxWorkersPerNode int      // 0 = unlimited
	CoresPerWorker    float64  // > 0
	MemPerWorker      float64  // GB, 0 = no limit
	CPUAffinity       string   // none (or ""), block, block-reverse, alternating, list:...
	Accelerators      []string // entries; empty = none
	GPUs              int      // physical GPUs on the node, 0 = unknown (no oversubscription mapping)
	AllowSharedCPUs   bool
	// Vendor is the node's accelerator vendor, resolved (ResolveVendor):
	// nvidia, amd, intel, or "" (unknown: every vendor's variable).
	Vendor string
}

// Node is what the pool may use on its node.
type Node struct {
	CPUs     []int // allowed cpuset (any order; treat as a set)
	MemoryGB float64
}

// Slot is one worker of the pool.
type Slot struct {
	Rank        int
	CPUs        []int             // ascending; nil when affinity is none
	Accelerator string            // "" when no accelerators
	Env         map[string]string // variables the slot's tasks get; never nil
	Unset       []string          // variables the slot's tasks must not inherit (sorted; see AcceleratorEnv)
}

// Bound is the slot count one option allows on its own.
type Bound struct {
	Option string // one of the Limit* names
	Slots  int    // capped at MaxSlots+1
}

// Layout is the result of Plan.
type Layout struct {
	Slots []Slot

	// LimitedBy names the option that limited the slot count. When several
	// options allow the same smallest count, it is the first of them in the
	// order of the SPEC formula: max_workers_per_node, cores_per_worker,
	// mem_per_worker, available_accelerators. Bounds shows all of them.
	LimitedBy string

	// Bounds lists, in that same order, the count each active option allows:
	// max_workers_per_node when > 0, cores_per_worker always, mem_per_worker
	// when > 0, available_accelerators when there are entries.
	Bounds []Bound

	// Oversubscribed is true when the accelerator entries were spread over
	// the node's physical GPUs (more integer entries than Options.GPUs); the
	// slots' Accelerator is then the physical GPU id.
	Oversubscribed bool
}

// Plan lays out a pool on node. Every error names the option and its value.
//
// Slots = min(max_workers_per_node, floor(CPUs / cores_per_worker),
// floor(memory / mem_per_worker), number of accelerator entries), each term
// present only when its option is set; 0 slots is an error naming the
// option(s) that allow none. The floors allow for float rounding (3 CPUs at
// 0.1 cores per worker is 30 slots, not 29).
//
// With cpu_affinity other than none, slot i gets its CPUs (see SPEC.md) and
// the variables OMP_NUM_THREADS, GOMP_CPU_AFFINITY, KMP_AFFINITY, OMP_PLACES
// and OMP_PROC_BIND. With accelerators, slot i gets entry i in its vendor's
// variable (AcceleratorEnv: CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES or
// ZE_AFFINITY_MASK), or in all three when the vendor is unknown. When all
// entries are plain integers and there are more of them than GPUs (> 0),
// the slots are spread over the GPUs in contiguous blocks whose sizes differ
// by at most one, larger blocks first, and each slot gets its physical GPU
// id in those same variables (the entries' values are then not used, only
// their number).
func Plan(node Node, opts Options) (*Layout, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	aff, err := parseAffinity(opts.CPUAffinity)
	if err != nil {
		return nil, err
	}
	avail, err := node.check()
	if err != nil {
		return nil, err
	}

	bounds := slotBounds(len(avail), node.MemoryGB, opts)
	n, limitedBy := bounds[0].Slots, bounds[0].Option
	for _, b := range bounds[1:] {
		if b.Slots < n {
			n, limitedBy = b.Slots, b.Option
		}
	}
	if n == 0 {
		return nil, zeroSlots(bounds, len(avail), node.MemoryGB, opts)
	}
	if n > MaxSlots {
		return nil, fmt.Errorf("%s: more than %d slots on one node", optionValue(limitedBy, opts), MaxSlots)
	}

	cpus, err := assignCPUs(aff, avail, n, opts.AllowSharedCPUs)
	if err != nil {
		return nil, err
	}
	accels := assignAccelerators(opts.Accelerators, opts.GPUs, n)

	l := &Layout{
		Slots:          make([]Slot, n),
		LimitedBy:      limitedBy,
		Bounds:         bounds,
		Oversubscribed: oversubscribed(opts.Accelerators, opts.GPUs),
	}
	for i := range l.Slots {
		s := Slot{Rank: i, Env: map[string]string{}}
		if cpus != nil {
			s.CPUs = cpus[i]
			setCPUEnv(s.Env, s.CPUs)
		}
		if accels != nil {
			s.Accelerator = accels[i]
			set, unset := AcceleratorEnv(opts.Vendor, s.Accelerator)
			maps.Copy(s.Env, set)
			s.Unset = unset
		}
		l.Slots[i] = s
	}
	return l, nil
}

// check validates the options that do not depend on the node.
func (o Options) check() error {
	if o.MaxWorkersPerNode < 0 {
		return fmt.Errorf("max_workers_per_node %d: must be >= 0 (0 = unlimited)", o.MaxWorkersPerNode)
	}
	if !(o.CoresPerWorker > 0) || math.IsInf(o.CoresPerWorker, 0) {
		return fmt.Errorf("cores_per_worker %g: must be a finite number > 0", o.CoresPerWorker)
	}
	if !(o.MemPerWorker >= 0) || math.IsInf(o.MemPerWorker, 0) {
		return fmt.Errorf("mem_per_worker %g: must be a finite number >= 0 (0 = no limit)", o.MemPerWorker)
	}
	if err := checkVendor(o.Vendor); err != nil {
		return err
	}
	if o.GPUs < 0 {
		return fmt.Errorf("gpus_per_node %d: must be >= 0", o.GPUs)
	}
	for i, e := range o.Accelerators {
		if strings.TrimSpace(e) == "" {
			return fmt.Errorf("available_accelerators[%d] %q: must not be empty", i, e)
		}
	}
	return nil
}

// check validates the node and returns its CPUs sorted, without duplicates.
func (n Node) check() ([]int, error) {
	if len(n.CPUs) == 0 {
		return nil, fmt.Errorf("node has no CPUs")
	}
	avail := slices.Clone(n.CPUs)
	slices.Sort(avail)
	avail = slices.Compact(avail)
	if avail[0] < 0 {
		return nil, fmt.Errorf("node CPU %d: must be >= 0", avail[0])
	}
	if !(n.MemoryGB >= 0) || math.IsInf(n.MemoryGB, 0) {
		return nil, fmt.Errorf("node memory %g GB: must be a finite number >= 0", n.MemoryGB)
	}
	return avail, nil
}

// slotBounds returns the count each active option allows, in formula order.
func slotBounds(ncpu int, memGB float64, o Options) []Bound {
	var b []Bound
	if o.MaxWorkersPerNode > 0 {
		b = append(b, Bound{LimitMaxWorkers, min(o.MaxWorkersPerNode, MaxSlots+1)})
	}
	b = append(b, Bound{LimitCores, floorDiv(float64(ncpu), o.CoresPerWorker)})
	if o.MemPerWorker > 0 {
		b = append(b, Bound{LimitMemory, floorDiv(memGB, o.MemPerWorker)})
	}
	if len(o.Accelerators) > 0 {
		b = append(b, Bound{LimitAccelerators, min(len(o.Accelerators), MaxSlots+1)})
	}
	return b
}

// floorDiv is floor(a/b) for a >= 0, b > 0, forgiving float rounding just
// below an integer and capped at MaxSlots+1.
func floorDiv(a, b float64) int {
	q := a / b
	if q >= MaxSlots+1 {
		return MaxSlots + 1
	}
	return int(math.Floor(q + 1e-9*math.Max(1, q)))
}

// zeroSlots names every option that allows no slot.
func zeroSlots(bounds []Bound, ncpu int, memGB float64, o Options) error {
	var why []string
	for _, b := range bounds {
		if b.Slots != 0 {
			continue
		}
		switch b.Option {
		case LimitCores:
			why = append(why, fmt.Sprintf("cores_per_worker %g: 0 slots on a node with %d CPUs", o.CoresPerWorker, ncpu))
		case LimitMemory:
			why = append(why, fmt.Sprintf("mem_per_worker %g: 0 slots in %g GB of memory", o.MemPerWorker, memGB))
		}
	}
	return errors.New(strings.Join(why, "; "))
}

// optionValue writes an option with its value, e.g. `cores_per_worker 0.5`.
func optionValue(option string, o Options) string {
	switch option {
	case LimitMaxWorkers:
		return fmt.Sprintf("%s %d", option, o.MaxWorkersPerNode)
	case LimitCores:
		return fmt.Sprintf("%s %g", option, o.CoresPerWorker)
	case LimitMemory:
		return fmt.Sprintf("%s %g", option, o.MemPerWorker)
	default:
		return fmt.Sprintf("%s (%d entries)", option, len(o.Accelerators))
	}
}

// setCPUEnv sets the OpenMP variables for a slot pinned to cpus.
func setCPUEnv(env map[string]string, cpus []int) {
	ids := make([]string, len(cpus))
	places := make([]string, len(cpus))
	for i, c := range cpus {
		ids[i] = strconv.Itoa(c)
		places[i] = "{" + ids[i] + "}"
	}
	list := strings.Join(ids, ",")
	env["OMP_NUM_THREADS"] = strconv.Itoa(len(cpus))
	env["GOMP_CPU_AFFINITY"] = list
	env["KMP_AFFINITY"] = "explicit,proclist=[" + list + "]"
	env["OMP_PLACES"] = strings.Join(places, ",")
	env["OMP_PROC_BIND"] = "close"
}
