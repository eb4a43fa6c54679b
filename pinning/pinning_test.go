package pinning

import (
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"
)

// seq returns the ids lo..hi inclusive.
func seq(lo, hi int) []int {
	var s []int
	for c := lo; c <= hi; c++ {
		s = append(s, c)
	}
	return s
}

func cat(parts ...[]int) []int {
	var s []int
	for _, p := range parts {
		s = append(s, p...)
	}
	return s
}

func slotCPUs(l *Layout) [][]int {
	var out [][]int
	for _, s := range l.Slots {
		out = append(out, s.CPUs)
	}
	return out
}

func TestPlanStrategies(t *testing.T) {
	tests := []struct {
		name string
		node Node
		opts Options
		want [][]int
	}{
		// The seed examples of the docs: 4 threads on 2 workers.
		{"block 4 on 2", Node{CPUs: seq(0, 3)}, Options{MaxWorkersPerNode: 2, CoresPerWorker: 1, CPUAffinity: "block"},
			[][]int{{0, 1}, {2, 3}}},
		{"block-reverse 4 on 2", Node{CPUs: seq(0, 3)}, Options{MaxWorkersPerNode: 2, CoresPerWorker: 1, CPUAffinity: "block-reverse"},
			[][]int{{2, 3}, {0, 1}}},
		{"alternating 4 on 2", Node{CPUs: seq(0, 3)}, Options{MaxWorkersPerNode: 2, CoresPerWorker: 1, CPUAffinity: "alternating"},
			[][]int{{0, 2}, {1, 3}}},
		{"none", Node{CPUs: seq(0, 3)}, Options{MaxWorkersPerNode: 2, CoresPerWorker: 1, CPUAffinity: "none"},
			[][]int{nil, nil}},
		{"empty is none", Node{CPUs: seq(0, 3)}, Options{MaxWorkersPerNode: 2, CoresPerWorker: 1},
			[][]int{nil, nil}},
		// Leftovers: block leaves the top CPU idle, alternating uses it.
		{"block 10 on 3", Node{CPUs: seq(0, 9)}, Options{CoresPerWorker: 3, CPUAffinity: "block"},
			[][]int{{0, 1, 2}, {3, 4, 5}, {6, 7, 8}}},
		{"block-reverse 10 on 3", Node{CPUs: seq(0, 9)}, Options{CoresPerWorker: 3, CPUAffinity: "block-reverse"},
			[][]int{{6, 7, 8}, {3, 4, 5}, {0, 1, 2}}},
		{"alternating 10 on 3", Node{CPUs: seq(0, 9)}, Options{CoresPerWorker: 3, CPUAffinity: "alternating"},
			[][]int{{0, 3, 6, 9}, {1, 4, 7}, {2, 5, 8}}},
		// The allowed set is a set: unsorted, duplicated, with holes.
		{"block on a cgroup cpuset", Node{CPUs: []int{17, 3, 5, 16, 4, 3, 2}}, Options{CoresPerWorker: 2, CPUAffinity: "block"},
			[][]int{{2, 3}, {4, 5}, {16, 17}}},
		{"alternating on a cgroup cpuset", Node{CPUs: []int{17, 3, 5, 16, 4, 2}}, Options{CoresPerWorker: 2, CPUAffinity: "alternating"},
			[][]int{{2, 5}, {3, 16}, {4, 17}}},
		{"list", Node{CPUs: seq(0, 7)}, Options{MaxWorkersPerNode: 2, CoresPerWorker: 1, CPUAffinity: "list:0-2,7:4,3"},
			[][]int{{0, 1, 2, 7}, {3, 4}}},
		{"list sorts and dedups a rank", Node{CPUs: seq(0, 7)}, Options{MaxWorkersPerNode: 1, CoresPerWorker: 1, CPUAffinity: "list:5,1-3,2"},
			[][]int{{1, 2, 3, 5}}},
		{"list shared when allowed", Node{CPUs: seq(0, 7)}, Options{MaxWorkersPerNode: 2, CoresPerWorker: 1, CPUAffinity: "list:0-3:2-5", AllowSharedCPUs: true},
			[][]int{{0, 1, 2, 3}, {2, 3, 4, 5}}},
		{"list with spaces around items", Node{CPUs: seq(0, 7)}, Options{MaxWorkersPerNode: 2, CoresPerWorker: 1, CPUAffinity: "list:0, 1:2-3 "},
			[][]int{{0, 1}, {2, 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Plan(tt.node, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := slotCPUs(l); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("CPUs = %v, want %v", got, tt.want)
			}
			for i, s := range l.Slots {
				if s.Rank != i {
					t.Errorf("slot %d has rank %d", i, s.Rank)
				}
			}
		})
	}
}

// TestAuroraList is a 12-rank list for an Aurora-like node (2 sockets x 52
// cores x 2 hyperthreads = 208 CPUs, siblings at +104): eight cores and
// their siblings per rank, skipping cores 0 and 52 (left to the OS) and the
// last three cores of each socket.
func TestAuroraList(t *testing.T) {
	var ranks []string
	var want [][]int
	for i := range 12 {
		base := 1 + 8*i
		if i >= 6 {
			base = 53 + 8*(i-6)
		}
		ranks = append(ranks, fmt.Sprintf("%d-%d,%d-%d", base, base+7, base+104, base+111))
		want = append(want, cat(seq(base, base+7), seq(base+104, base+111)))
	}
	aff := "list:" + strings.Join(ranks, ":")
	if !strings.HasPrefix(aff, "list:1-8,105-112:9-16,113-120:") {
		t.Fatalf("list built wrong: %s", aff)
	}
	tiles := []string{"0.0", "0.1", "1.0", "1.1", "2.0", "2.1", "3.0", "3.1", "4.0", "4.1", "5.0", "5.1"}
	l, err := Plan(Node{CPUs: seq(0, 207), MemoryGB: 1024},
		Options{CoresPerWorker: 16, CPUAffinity: aff, Accelerators: tiles, GPUs: 6})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Slots) != 12 || l.LimitedBy != LimitAccelerators {
		t.Fatalf("%d slots limited by %s, want 12 by available_accelerators", len(l.Slots), l.LimitedBy)
	}
	if got := slotCPUs(l); !reflect.DeepEqual(got, want) {
		t.Errorf("CPUs = %v, want %v", got, want)
	}
	if l.Oversubscribed {
		t.Error("tile names are not integers: want no oversubscription")
	}
	s := l.Slots[7]
	wantEnv := map[string]string{
		"OMP_NUM_THREADS":               "16",
		"GOMP_CPU_AFFINITY":             "61,62,63,64,65,66,67,68,165,166,167,168,169,170,171,172",
		"KMP_AFFINITY":                  "explicit,proclist=[61,62,63,64,65,66,67,68,165,166,167,168,169,170,171,172]",
		"OMP_PLACES":                    "{61},{62},{63},{64},{65},{66},{67},{68},{165},{166},{167},{168},{169},{170},{171},{172}",
		"OMP_PROC_BIND":                 "close",
		"CUDA_VISIBLE_DEVICES":          "3.1",
		"ROCR_VISIBLE_DEVICES":          "3.1",
		"ZE_AFFINITY_MASK":              "3.1",
		"ZE_ENABLE_PCI_ID_DEVICE_ORDER": "1",
	}
	if !maps.Equal(s.Env, wantEnv) {
		t.Errorf("slot 7 env = %v\nwant %v", s.Env, wantEnv)
	}
	// The skipped CPUs are idle.
	used := map[int]bool{}
	for _, s := range l.Slots {
		for _, c := range s.CPUs {
			used[c] = true
		}
	}
	for _, c := range []int{0, 49, 50, 51, 52, 101, 102, 103, 104, 153, 207} {
		if used[c] {
			t.Errorf("CPU %d should be idle", c)
		}
	}
	if len(used) != 192 {
		t.Errorf("%d CPUs used, want 192", len(used))
	}
}

func TestPlanSlotCount(t *testing.T) {
	tests := []struct {
		name      string
		node      Node
		opts      Options
		slots     int
		limitedBy string
	}{
		{"cores", Node{CPUs: seq(0, 7)}, Options{CoresPerWorker: 1}, 8, LimitCores},
		{"fractional cores", Node{CPUs: seq(0, 7)}, Options{CoresPerWorker: 0.5}, 16, LimitCores},
		{"cores rounding", Node{CPUs: seq(0, 2)}, Options{CoresPerWorker: 0.1}, 30, LimitCores},
		{"cores floor", Node{CPUs: seq(0, 7)}, Options{CoresPerWorker: 3}, 2, LimitCores},
		{"max workers", Node{CPUs: seq(0, 7)}, Options{MaxWorkersPerNode: 3, CoresPerWorker: 1}, 3, LimitMaxWorkers},
		{"max workers above cores", Node{CPUs: seq(0, 7)}, Options{MaxWorkersPerNode: 100, CoresPerWorker: 1}, 8, LimitCores},
		{"memory", Node{CPUs: seq(0, 63), MemoryGB: 250.3}, Options{CoresPerWorker: 1, MemPerWorker: 16}, 15, LimitMemory},
		{"memory ignored at 0", Node{CPUs: seq(0, 7), MemoryGB: 0}, Options{CoresPerWorker: 1}, 8, LimitCores},
		{"accelerators", Node{CPUs: seq(0, 63)}, Options{CoresPerWorker: 1, Accelerators: []string{"0", "1", "2", "3"}}, 4, LimitAccelerators},
		{"accelerators above cores", Node{CPUs: seq(0, 15)}, Options{CoresPerWorker: 1, Accelerators: numbered(32)}, 16, LimitCores},
		// Ties go to the first option in formula order.
		{"tie max workers and cores", Node{CPUs: seq(0, 7)}, Options{MaxWorkersPerNode: 8, CoresPerWorker: 1}, 8, LimitMaxWorkers},
		{"tie cores and memory", Node{CPUs: seq(0, 7), MemoryGB: 32}, Options{CoresPerWorker: 2, MemPerWorker: 8}, 4, LimitCores},
		{"tie memory and accelerators", Node{CPUs: seq(0, 63), MemoryGB: 32}, Options{CoresPerWorker: 1, MemPerWorker: 8, Accelerators: numbered(4)}, 4, LimitMemory},
		{"tie all four", Node{CPUs: seq(0, 7), MemoryGB: 16}, Options{MaxWorkersPerNode: 4, CoresPerWorker: 2, MemPerWorker: 4, Accelerators: numbered(4)}, 4, LimitMaxWorkers},
		{"duplicate node CPUs count once", Node{CPUs: []int{0, 1, 1, 2, 2, 3}}, Options{CoresPerWorker: 1}, 4, LimitCores},
		{"many slots without affinity", Node{CPUs: seq(0, 7)}, Options{CoresPerWorker: 0.001}, 8000, LimitCores},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Plan(tt.node, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Slots) != tt.slots || l.LimitedBy != tt.limitedBy {
				t.Errorf("%d slots limited by %s, want %d by %s", len(l.Slots), l.LimitedBy, tt.slots, tt.limitedBy)
			}
			for _, s := range l.Slots {
				if s.CPUs != nil || (len(s.Env) != 0 && tt.opts.Accelerators == nil) {
					t.Fatalf("slot %d: CPUs %v env %v, want none without affinity", s.Rank, s.CPUs, s.Env)
				}
			}
		})
	}
}

func TestPlanBounds(t *testing.T) {
	l, err := Plan(Node{CPUs: seq(0, 7), MemoryGB: 16},
		Options{MaxWorkersPerNode: 4, CoresPerWorker: 2, MemPerWorker: 3, Accelerators: numbered(6)})
	if err != nil {
		t.Fatal(err)
	}
	want := []Bound{{LimitMaxWorkers, 4}, {LimitCores, 4}, {LimitMemory, 5}, {LimitAccelerators, 6}}
	if !reflect.DeepEqual(l.Bounds, want) {
		t.Errorf("bounds = %v, want %v", l.Bounds, want)
	}
	l, err = Plan(Node{CPUs: seq(0, 7)}, Options{CoresPerWorker: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Bound{{LimitCores, 8}}; !reflect.DeepEqual(l.Bounds, want) {
		t.Errorf("bounds = %v, want %v", l.Bounds, want)
	}
}

func numbered(n int) []string {
	var s []string
	for i := range n {
		s = append(s, fmt.Sprint(i))
	}
	return s
}

func slotAccels(l *Layout) []string {
	var out []string
	for _, s := range l.Slots {
		out = append(out, s.Accelerator)
	}
	return out
}

func TestPlanAccelerators(t *testing.T) {
	tests := []struct {
		name    string
		cpus    int
		entries []string
		gpus    int
		want    []string
		over    bool
	}{
		{"none", 4, nil, 4, []string{"", "", "", ""}, false},
		{"one per GPU", 64, numbered(4), 4, []string{"0", "1", "2", "3"}, false},
		{"unknown GPU count keeps entries", 64, numbered(8), 0, numbered(8), false},
		{"several devices per slot", 64, []string{"0,1", "2,3"}, 4, []string{"0,1", "2,3"}, false},
		{"names are verbatim", 64, []string{"GPU-a1b2", "MIG-3c4d"}, 1, []string{"GPU-a1b2", "MIG-3c4d"}, false},
		{"subset of GPUs", 64, []string{"2", "3"}, 4, []string{"2", "3"}, false},
		{"6 on 4", 64, numbered(6), 4, []string{"0", "0", "1", "1", "2", "3"}, true},
		{"5 on 4", 64, numbered(5), 4, []string{"0", "0", "1", "2", "3"}, true},
		{"7 on 3", 64, numbered(7), 3, []string{"0", "0", "0", "1", "1", "2", "2"}, true},
		// Fewer slots than entries (cores limit): the slots, not the
		// entries, are spread, so every GPU is used.
		{"32 entries, 16 slots, 4 GPUs", 16, numbered(32), 4,
			[]string{"0", "0", "0", "0", "1", "1", "1", "1", "2", "2", "2", "2", "3", "3", "3", "3"}, true},
		{"8 entries, 2 slots, 4 GPUs", 2, numbered(8), 4, []string{"0", "1"}, true},
		{"entries values are not used", 64, []string{"7", "7", "9", "9", "100"}, 2, []string{"0", "0", "0", "1", "1"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Plan(Node{CPUs: seq(0, tt.cpus-1)}, Options{CoresPerWorker: 1, MaxWorkersPerNode: len(tt.want), Accelerators: tt.entries, GPUs: tt.gpus})
			if err != nil {
				t.Fatal(err)
			}
			if got := slotAccels(l); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("accelerators = %q, want %q", got, tt.want)
			}
			if l.Oversubscribed != tt.over {
				t.Errorf("oversubscribed = %v, want %v", l.Oversubscribed, tt.over)
			}
			for _, s := range l.Slots {
				if s.Accelerator == "" {
					if len(s.Env) != 0 {
						t.Errorf("slot %d env %v, want empty", s.Rank, s.Env)
					}
					continue
				}
				for _, v := range []string{"CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "ZE_AFFINITY_MASK"} {
					if s.Env[v] != s.Accelerator {
						t.Errorf("slot %d %s=%q, want %q", s.Rank, v, s.Env[v], s.Accelerator)
					}
				}
				if s.Env["ZE_ENABLE_PCI_ID_DEVICE_ORDER"] != "1" {
					t.Errorf("slot %d: ZE_ENABLE_PCI_ID_DEVICE_ORDER=%q", s.Rank, s.Env["ZE_ENABLE_PCI_ID_DEVICE_ORDER"])
				}
			}
		})
	}
}

// TestMPS32on4 is the docs' example: 32 entries on 4 GPUs with enough cores.
func TestMPS32on4(t *testing.T) {
	l, err := Plan(Node{CPUs: seq(0, 63)}, Options{CoresPerWorker: 2, CPUAffinity: "block", Accelerators: numbered(32), GPUs: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Slots) != 32 || !l.Oversubscribed {
		t.Fatalf("%d slots, oversubscribed %v; want 32, true", len(l.Slots), l.Oversubscribed)
	}
	for _, s := range l.Slots {
		want := fmt.Sprint(s.Rank / 8)
		if s.Accelerator != want || s.Env["CUDA_VISIBLE_DEVICES"] != want || s.Env["ZE_AFFINITY_MASK"] != want {
			t.Errorf("slot %d: accelerator %q env %v, want GPU %s", s.Rank, s.Accelerator, s.Env, want)
		}
		if wantCPUs := seq(2*s.Rank, 2*s.Rank+1); !reflect.DeepEqual(s.CPUs, wantCPUs) {
			t.Errorf("slot %d CPUs %v, want %v", s.Rank, s.CPUs, wantCPUs)
		}
	}
}

func TestGPUOfBlocks(t *testing.T) {
	for _, c := range []struct {
		n, g  int
		sizes []int
	}{
		{6, 4, []int{2, 2, 1, 1}},
		{32, 4, []int{8, 8, 8, 8}},
		{2, 4, []int{1, 1, 0, 0}},
		{4, 4, []int{1, 1, 1, 1}},
		{9, 2, []int{5, 4}},
		{1, 1, []int{1}},
	} {
		sizes := make([]int, c.g)
		prev := 0
		for i := range c.n {
			g := gpuOf(i, c.n, c.g)
			if g < prev || g >= c.g {
				t.Fatalf("gpuOf(%d, %d, %d) = %d: not contiguous or out of range", i, c.n, c.g, g)
			}
			prev = g
			sizes[g]++
		}
		if !reflect.DeepEqual(sizes, c.sizes) {
			t.Errorf("%d on %d: sizes %v, want %v", c.n, c.g, sizes, c.sizes)
		}
	}
}

func TestPlanEnv(t *testing.T) {
	l, err := Plan(Node{CPUs: seq(0, 7)}, Options{MaxWorkersPerNode: 2, CoresPerWorker: 1, CPUAffinity: "list:0-2,6:3"})
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]string{{
		"OMP_NUM_THREADS":   "4",
		"GOMP_CPU_AFFINITY": "0,1,2,6",
		"KMP_AFFINITY":      "explicit,proclist=[0,1,2,6]",
		"OMP_PLACES":        "{0},{1},{2},{6}",
		"OMP_PROC_BIND":     "close",
	}, {
		"OMP_NUM_THREADS":   "1",
		"GOMP_CPU_AFFINITY": "3",
		"KMP_AFFINITY":      "explicit,proclist=[3]",
		"OMP_PLACES":        "{3}",
		"OMP_PROC_BIND":     "close",
	}}
	for i, s := range l.Slots {
		if !maps.Equal(s.Env, want[i]) {
			t.Errorf("slot %d env = %v, want %v", i, s.Env, want[i])
		}
	}
}

func TestPlanErrors(t *testing.T) {
	eight := Node{CPUs: seq(0, 7), MemoryGB: 32}
	tests := []struct {
		name string
		node Node
		opts Options
		want string // the whole message
	}{
		{"unknown affinity", eight, Options{CoresPerWorker: 1, CPUAffinity: "compact"},
			`cpu_affinity "compact": want none, block, block-reverse, alternating or a list such as list:0-3:4-7`},
		{"affinity is case sensitive", eight, Options{CoresPerWorker: 1, CPUAffinity: "Block"},
			`cpu_affinity "Block": want none, block, block-reverse, alternating or a list such as list:0-3:4-7`},
		{"list without colon", eight, Options{CoresPerWorker: 1, CPUAffinity: "list"},
			`cpu_affinity "list": want none, block, block-reverse, alternating or a list such as list:0-3:4-7`},
		{"zero cores per worker", eight, Options{CoresPerWorker: 0, CPUAffinity: "none"},
			`cores_per_worker 0: must be a finite number > 0`},
		{"negative max workers", eight, Options{MaxWorkersPerNode: -1, CoresPerWorker: 1, CPUAffinity: "none"},
			`max_workers_per_node -1: must be >= 0 (0 = unlimited)`},
		{"negative mem per worker", eight, Options{CoresPerWorker: 1, MemPerWorker: -2, CPUAffinity: "none"},
			`mem_per_worker -2: must be a finite number >= 0 (0 = no limit)`},
		{"negative gpus", eight, Options{CoresPerWorker: 1, GPUs: -1, CPUAffinity: "none"},
			`gpus_per_node -1: must be >= 0`},
		{"empty accelerator", eight, Options{CoresPerWorker: 1, Accelerators: []string{"0", " "}, CPUAffinity: "none"},
			`available_accelerators[1] " ": must not be empty`},
		{"no CPUs", Node{}, Options{CoresPerWorker: 1, CPUAffinity: "none"},
			`node has no CPUs`},
		{"negative CPU", Node{CPUs: []int{3, -1}}, Options{CoresPerWorker: 1, CPUAffinity: "none"},
			`node CPU -1: must be >= 0`},
		{"negative memory", Node{CPUs: seq(0, 3), MemoryGB: -1}, Options{CoresPerWorker: 1, CPUAffinity: "none"},
			`node memory -1 GB: must be a finite number >= 0`},
		{"zero slots from cores", eight, Options{CoresPerWorker: 16, CPUAffinity: "none"},
			`cores_per_worker 16: 0 slots on a node with 8 CPUs`},
		{"zero slots from memory", eight, Options{CoresPerWorker: 1, MemPerWorker: 64, CPUAffinity: "none"},
			`mem_per_worker 64: 0 slots in 32 GB of memory`},
		{"zero slots from both", eight, Options{CoresPerWorker: 9, MemPerWorker: 33, CPUAffinity: "none"},
			`cores_per_worker 9: 0 slots on a node with 8 CPUs; mem_per_worker 33: 0 slots in 32 GB of memory`},
		{"too many slots", eight, Options{CoresPerWorker: 1e-6, CPUAffinity: "none"},
			`cores_per_worker 1e-06: more than 65536 slots on one node`},
		{"more workers than cores block", eight, Options{CoresPerWorker: 0.5, CPUAffinity: "block"},
			`cpu_affinity "block": more workers than cores: 16 workers on 8 CPUs`},
		{"more workers than cores alternating", eight, Options{CoresPerWorker: 0.5, CPUAffinity: "alternating"},
			`cpu_affinity "alternating": more workers than cores: 16 workers on 8 CPUs`},
		{"more workers than cores list", Node{CPUs: seq(0, 1)}, Options{MaxWorkersPerNode: 3, CoresPerWorker: 0.5, CPUAffinity: "list:0:1:1", AllowSharedCPUs: true},
			`cpu_affinity "list:0:1:1": more workers than cores: 3 workers on 2 CPUs`},
		{"rank count", eight, Options{MaxWorkersPerNode: 3, CoresPerWorker: 1, CPUAffinity: "list:0:1"},
			`cpu_affinity "list:0:1": 2 ranks for 3 workers`},
		{"too many ranks", eight, Options{MaxWorkersPerNode: 1, CoresPerWorker: 1, CPUAffinity: "list:0:1"},
			`cpu_affinity "list:0:1": 2 ranks for 1 workers`},
		{"malformed item", eight, Options{MaxWorkersPerNode: 2, CoresPerWorker: 1, CPUAffinity: "list:0-3:4-x"},
			`cpu_affinity "list:0-3:4-x": rank 1: item "4-x": want a CPU id or a range a-b`},
		{"two dashes", eight, Options{MaxWorkersPerNode: 2, CoresPerWorker: 1, CPUAffinity: "list:0-1-2:4"},
			`cpu_affinity "list:0-1-2:4": rank 0: item "0-1-2": want a CPU id or a range a-b`},
		{"negative id", eight, Options{MaxWorkersPerNode: 1, CoresPerWorker: 1, CPUAffinity: "list:-1"},
			`cpu_affinity "list:-1": rank 0: item "-1": want a CPU id or a range a-b`},
		{"spaced range", eight, Options{MaxWorkersPerNode: 2, CoresPerWorker: 1, CPUAffinity: "list:0, 1:2 - 3"},
			`cpu_affinity "list:0, 1:2 - 3": rank 1: item "2 - 3": want a CPU id or a range a-b`},
		{"reversed range", eight, Options{MaxWorkersPerNode: 2, CoresPerWorker: 1, CPUAffinity: "list:3-0:4"},
			`cpu_affinity "list:3-0:4": rank 0: item "3-0": range start 3 is above its end 0`},
		{"empty rank", eight, Options{MaxWorkersPerNode: 2, CoresPerWorker: 1, CPUAffinity: "list:0::1"},
			`cpu_affinity "list:0::1": rank 1 is empty (ranks are separated by ':', e.g. list:0-3:4-7)`},
		{"empty list", eight, Options{MaxWorkersPerNode: 2, CoresPerWorker: 1, CPUAffinity: "list:"},
			`cpu_affinity "list:": rank 0 is empty (ranks are separated by ':', e.g. list:0-3:4-7)`},
		{"empty item", eight, Options{MaxWorkersPerNode: 1, CoresPerWorker: 1, CPUAffinity: "list:0,,1"},
			`cpu_affinity "list:0,,1": rank 0: empty item in CPU list`},
		{"huge id", eight, Options{MaxWorkersPerNode: 1, CoresPerWorker: 1, CPUAffinity: "list:99999999999999999999"},
			`cpu_affinity "list:99999999999999999999": rank 0: item "99999999999999999999": CPU id above 65535`},
		{"CPU outside the cpuset", Node{CPUs: cat(seq(0, 3), seq(8, 11))}, Options{MaxWorkersPerNode: 2, CoresPerWorker: 1, CPUAffinity: "list:0-3:4-7"},
			`cpu_affinity "list:0-3:4-7": rank 1: CPU 4 is not in the node's allowed CPUs 0-3,8-11`},
		{"shared CPU", eight, Options{MaxWorkersPerNode: 2, CoresPerWorker: 1, CPUAffinity: "list:0-3:3-5"},
			`cpu_affinity "list:0-3:3-5": CPU 3 is in rank 0 and rank 1 (set allow_shared_cpus to allow this)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Plan(tt.node, tt.opts)
			if err == nil {
				t.Fatalf("no error; got %d slots", len(l.Slots))
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %s\nwant %s", err, tt.want)
			}
		})
	}
}

// TestPlanDoesNotAlias checks that the result shares no memory with the
// inputs or between slots.
func TestPlanDoesNotAlias(t *testing.T) {
	node := Node{CPUs: seq(0, 7)}
	l, err := Plan(node, Options{CoresPerWorker: 4, CPUAffinity: "block"})
	if err != nil {
		t.Fatal(err)
	}
	l.Slots[0].CPUs[0] = 99
	l.Slots[0].CPUs = append(l.Slots[0].CPUs, 98)
	if node.CPUs[0] != 0 || l.Slots[1].CPUs[0] != 4 {
		t.Errorf("slots alias the node or each other: node %v, slot 1 %v", node.CPUs, l.Slots[1].CPUs)
	}
}
