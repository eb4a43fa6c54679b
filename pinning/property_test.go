package pinning

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// expectedSlots is the SPEC formula, written independently of Plan. The
// property test only uses values whose quotients are exact in binary.
func expectedSlots(ncpu int, memGB float64, o Options) int {
	n := int(math.Floor(float64(ncpu) / o.CoresPerWorker))
	if o.MaxWorkersPerNode > 0 {
		n = min(n, o.MaxWorkersPerNode)
	}
	if o.MemPerWorker > 0 {
		n = min(n, int(math.Floor(memGB/o.MemPerWorker)))
	}
	if len(o.Accelerators) > 0 {
		n = min(n, len(o.Accelerators))
	}
	return n
}

// checkInvariants checks what must hold of every layout Plan returns.
func checkInvariants(t *testing.T, node Node, o Options, l *Layout) {
	t.Helper()
	avail := slices.Clone(node.CPUs)
	slices.Sort(avail)
	avail = slices.Compact(avail)
	n := len(l.Slots)

	if want := expectedSlots(len(avail), node.MemoryGB, o); n != want {
		t.Fatalf("%d slots, formula gives %d (node %v, opts %+v)", n, want, node, o)
	}
	if n == 0 {
		t.Fatal("Plan returned 0 slots without an error")
	}
	first := ""
	for _, b := range l.Bounds {
		if b.Slots < n {
			t.Fatalf("bound %v is below the slot count %d", b, n)
		}
		if b.Slots == n && first == "" {
			first = b.Option
		}
	}
	if l.LimitedBy != first {
		t.Fatalf("limited by %q, want %q (bounds %v)", l.LimitedBy, first, l.Bounds)
	}

	allowed := map[int]bool{}
	for _, c := range avail {
		allowed[c] = true
	}
	owner := map[int]int{}
	pinned := o.CPUAffinity != "" && o.CPUAffinity != AffinityNone
	k := len(avail) / n
	for i, s := range l.Slots {
		if s.Rank != i {
			t.Fatalf("slot %d has rank %d", i, s.Rank)
		}
		if s.Env == nil {
			t.Fatalf("slot %d: nil env", i)
		}
		if !pinned {
			if s.CPUs != nil || s.Env["OMP_NUM_THREADS"] != "" {
				t.Fatalf("slot %d pinned to %v with affinity %q", i, s.CPUs, o.CPUAffinity)
			}
		} else {
			if len(s.CPUs) == 0 || !slices.IsSorted(s.CPUs) || len(slices.Compact(slices.Clone(s.CPUs))) != len(s.CPUs) {
				t.Fatalf("slot %d CPUs %v: want a non-empty ascending set", i, s.CPUs)
			}
			for _, c := range s.CPUs {
				if !allowed[c] {
					t.Fatalf("slot %d has CPU %d outside the node's %v", i, c, avail)
				}
				if j, dup := owner[c]; dup && !o.AllowSharedCPUs {
					t.Fatalf("CPU %d in slots %d and %d", c, j, i)
				}
				owner[c] = i
			}
			if got := s.Env["OMP_NUM_THREADS"]; got != strconv.Itoa(len(s.CPUs)) {
				t.Fatalf("slot %d OMP_NUM_THREADS=%s for %d CPUs", i, got, len(s.CPUs))
			}
			if got := s.Env["OMP_PLACES"]; strings.Count(got, "{") != len(s.CPUs) {
				t.Fatalf("slot %d OMP_PLACES=%s for %d CPUs", i, got, len(s.CPUs))
			}
		}
		switch o.CPUAffinity {
		case AffinityBlock:
			if !slices.Equal(s.CPUs, avail[k*i:k*(i+1)]) {
				t.Fatalf("block slot %d = %v, want %v", i, s.CPUs, avail[k*i:k*(i+1)])
			}
		case AffinityBlockReverse:
			j := n - 1 - i
			if !slices.Equal(s.CPUs, avail[k*j:k*(j+1)]) {
				t.Fatalf("block-reverse slot %d = %v, want %v", i, s.CPUs, avail[k*j:k*(j+1)])
			}
		case AffinityAlternating:
			if len(s.CPUs) != k && len(s.CPUs) != k+1 {
				t.Fatalf("alternating slot %d has %d CPUs, want %d or %d", i, len(s.CPUs), k, k+1)
			}
		}
	}
	if o.CPUAffinity == AffinityAlternating && len(owner) != len(avail) {
		t.Fatalf("alternating used %d of %d CPUs", len(owner), len(avail))
	}

	over := oversubscribed(o.Accelerators, o.GPUs)
	if over != l.Oversubscribed {
		t.Fatalf("oversubscribed = %v, want %v", l.Oversubscribed, over)
	}
	prev := 0
	for i, s := range l.Slots {
		switch {
		case len(o.Accelerators) == 0:
			if s.Accelerator != "" || s.Env["CUDA_VISIBLE_DEVICES"] != "" {
				t.Fatalf("slot %d has accelerator %q without entries", i, s.Accelerator)
			}
		case over:
			g, err := strconv.Atoi(s.Accelerator)
			if err != nil || g < 0 || g >= o.GPUs || g < prev {
				t.Fatalf("slot %d on GPU %q: want a non-decreasing id in [0, %d)", i, s.Accelerator, o.GPUs)
			}
			prev = g
		default:
			if s.Accelerator != o.Accelerators[i] {
				t.Fatalf("slot %d accelerator %q, want entry %q", i, s.Accelerator, o.Accelerators[i])
			}
		}
		if s.Accelerator != "" && (s.Env["CUDA_VISIBLE_DEVICES"] != s.Accelerator ||
			s.Env["ROCR_VISIBLE_DEVICES"] != s.Accelerator || s.Env["ZE_AFFINITY_MASK"] != s.Accelerator) {
			t.Fatalf("slot %d env %v does not match accelerator %q", i, s.Env, s.Accelerator)
		}
	}
	if over {
		// Blocks are as even as possible: sizes differ by at most one.
		per := map[string]int{}
		for _, s := range l.Slots {
			per[s.Accelerator]++
		}
		lo, hi := n, 0
		for g := range o.GPUs {
			c := per[strconv.Itoa(g)]
			lo, hi = min(lo, c), max(hi, c)
		}
		if n >= o.GPUs && hi-lo > 1 {
			t.Fatalf("%d slots on %d GPUs: uneven blocks %v", n, o.GPUs, per)
		}
	}
}

// randomCase draws a node and options. The list: strategy is drawn as a
// valid list for the expected slot count, so that it is exercised too.
func randomCase(r *rand.Rand) (Node, Options) {
	var node Node
	for len(node.CPUs) == 0 {
		total := 1 + r.IntN(256)
		keep := r.Float64()
		for c := range total {
			if r.Float64() < keep {
				node.CPUs = append(node.CPUs, c)
			}
		}
	}
	r.Shuffle(len(node.CPUs), func(i, j int) { node.CPUs[i], node.CPUs[j] = node.CPUs[j], node.CPUs[i] })
	node.MemoryGB = float64(r.IntN(1025)) / 2

	o := Options{
		CoresPerWorker:  []float64{0.25, 0.5, 1, 1, 1.5, 2, 3, 4, 8, 16}[r.IntN(10)],
		AllowSharedCPUs: r.IntN(4) == 0,
	}
	if r.IntN(2) == 0 {
		o.MaxWorkersPerNode = 1 + r.IntN(64)
	}
	if r.IntN(3) == 0 {
		o.MemPerWorker = []float64{0.5, 1, 2, 4, 16, 64}[r.IntN(6)]
	}
	switch r.IntN(4) {
	case 1:
		for i := range 1 + r.IntN(40) {
			o.Accelerators = append(o.Accelerators, strconv.Itoa(i))
		}
	case 2:
		for i := range 1 + r.IntN(8) {
			o.Accelerators = append(o.Accelerators, strconv.Itoa(2*i)+","+strconv.Itoa(2*i+1))
		}
	}
	o.GPUs = r.IntN(9)
	o.CPUAffinity = []string{"none", "", AffinityBlock, AffinityBlockReverse, AffinityAlternating, "list"}[r.IntN(6)]
	if o.CPUAffinity == "list" {
		o.CPUAffinity = randomList(r, node, o)
	}
	return node, o
}

// randomList splits a random subset of the node's CPUs into one rank per
// expected slot (or gives up with "block" when that is impossible).
func randomList(r *rand.Rand, node Node, o Options) string {
	avail := slices.Clone(node.CPUs)
	slices.Sort(avail)
	avail = slices.Compact(avail)
	n := expectedSlots(len(avail), node.MemoryGB, o)
	if n == 0 || n > len(avail) {
		return AffinityBlock
	}
	r.Shuffle(len(avail), func(i, j int) { avail[i], avail[j] = avail[j], avail[i] })
	use := n + r.IntN(len(avail)-n+1)
	ranks := make([][]int, n)
	for i, c := range avail[:use] {
		j := i
		if i >= n {
			j = r.IntN(n)
		}
		ranks[j] = append(ranks[j], c)
	}
	parts := make([]string, n)
	for i, rank := range ranks {
		parts[i] = FormatCPUList(rank)
	}
	return "list:" + strings.Join(parts, ":")
}

func TestPlanProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	iterations := 20000
	if testing.Short() {
		iterations = 2000
	}
	var ok, failed, lists, over int
	for range iterations {
		node, o := randomCase(r)
		l, err := Plan(node, o)
		avail := slices.Compact(slices.Sorted(slices.Values(node.CPUs)))
		n := expectedSlots(len(avail), node.MemoryGB, o)
		pinned := o.CPUAffinity != "" && o.CPUAffinity != AffinityNone
		switch {
		case n == 0:
			if err == nil || !strings.Contains(err.Error(), ": 0 slots") {
				t.Fatalf("formula gives 0 slots, Plan gave %v (node %v, opts %+v)", err, node, o)
			}
			failed++
		case pinned && n > len(avail):
			if err == nil || !strings.Contains(err.Error(), "more workers than cores") {
				t.Fatalf("%d slots on %d CPUs, Plan gave %v (opts %+v)", n, len(avail), err, o)
			}
			failed++
		case err != nil:
			t.Fatalf("Plan(%v, %+v): %v", node, o, err)
		default:
			checkInvariants(t, node, o, l)
			ok++
			if strings.HasPrefix(o.CPUAffinity, "list:") {
				lists++
			}
			if l.Oversubscribed {
				over++
			}
		}
	}
	if ok < iterations/2 {
		t.Errorf("only %d of %d random cases gave a layout; the generator is off", ok, iterations)
	}
	if lists < iterations/20 || over < iterations/50 {
		t.Errorf("too few list (%d) or oversubscribed (%d) layouts; the generator is off", lists, over)
	}
	t.Logf("%d layouts checked (%d list:, %d oversubscribed), %d expected errors", ok, lists, over, failed)
}

// TestPlanListSharing checks allow_shared_cpus on random lists that reuse
// CPUs: rejected without the option, accepted with it.
func TestPlanListSharing(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		ncpu := 2 + r.IntN(64)
		n := 2 + r.IntN(ncpu-1)
		n = min(n, ncpu)
		parts := make([]string, n)
		for i := range parts {
			lo := r.IntN(ncpu)
			hi := lo + r.IntN(ncpu-lo)
			parts[i] = strconv.Itoa(lo) + "-" + strconv.Itoa(hi)
		}
		parts[n-1] = parts[0] // surely shared
		node := Node{CPUs: seq(0, ncpu-1)}
		o := Options{MaxWorkersPerNode: n, CoresPerWorker: 1, CPUAffinity: "list:" + strings.Join(parts, ":")}
		if _, err := Plan(node, o); err == nil || !strings.Contains(err.Error(), "allow_shared_cpus") {
			t.Fatalf("%s: want a sharing error, got %v", o.CPUAffinity, err)
		}
		o.AllowSharedCPUs = true
		l, err := Plan(node, o)
		if err != nil {
			t.Fatalf("%s with sharing allowed: %v", o.CPUAffinity, err)
		}
		checkInvariants(t, node, o, l)
	}
}
