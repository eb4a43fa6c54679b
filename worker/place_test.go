package worker

import (
	"reflect"
	"testing"

	"github.com/htex/htex/pinning"
	"github.com/htex/htex/wire"
)

func TestPickSlots(t *testing.T) {
	F, B := true, false
	for _, c := range []struct {
		name  string
		free  []bool
		group []int
		n     int
		want  []int
	}{
		{"one free slot", []bool{B, F, B}, nil, 1, []int{1}},
		{"the first of several", []bool{F, F, F}, nil, 1, []int{0}},
		{"adjacent pair first", []bool{F, B, F, F}, nil, 2, []int{2, 3}},
		{"no adjacent pair: the tightest", []bool{F, B, B, F, B, F}, nil, 2, []int{3, 5}},
		{"too few free", []bool{F, B, B}, nil, 2, nil},
		{"all", []bool{F, F, F, F}, nil, 4, []int{0, 1, 2, 3}},
		{"zero asked", []bool{F}, nil, 0, nil},
		{"same socket beats adjacent across sockets", []bool{B, F, F, B, F, B, F, B}, []int{0, 0, 0, 0, 1, 1, 1, 1}, 2, []int{1, 2}},
		{"adjacent across sockets loses to a gap in one", []bool{B, B, B, F, F, B, F, B}, []int{0, 0, 0, 0, 1, 1, 1, 1}, 2, []int{4, 6}},
		{"across sockets when it must", []bool{B, B, B, F, F, B, B, B}, []int{0, 0, 0, 0, 1, 1, 1, 1}, 2, []int{3, 4}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := pickSlots(c.free, c.group, nil, c.n); !reflect.DeepEqual(got, c.want) {
				t.Errorf("pickSlots = %v, want %v", got, c.want)
			}
		})
	}
}

// TestPickSlotsGPUs: with slots that share GPUs through MPS (two a GPU),
// a task asking for GPUs gets slots whose GPUs no running task uses.
func TestPickSlotsGPUs(t *testing.T) {
	F, B := true, false
	devs := [][]string{{"0"}, {"0"}, {"1"}, {"1"}, {"2"}, {"2"}}
	for _, c := range []struct {
		name string
		free []bool
		n    int
		want []int
	}{
		{"all free: the first GPU", []bool{F, F, F, F, F, F}, 2, []int{0, 1}},
		{"slot 0 busy: not GPU 0's other slot", []bool{B, F, F, F, F, F}, 2, []int{2, 3}},
		{"one slot: a GPU nobody uses", []bool{B, F, F, F, F, F}, 1, []int{2}},
		{"every GPU in use: the tightest", []bool{B, F, F, B, B, F}, 2, []int{1, 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := pickSlots(c.free, nil, devs, c.n); !reflect.DeepEqual(got, c.want) {
				t.Errorf("pickSlots = %v, want %v", got, c.want)
			}
		})
	}
}

func layoutOf(t *testing.T, ncpu int, opts pinning.Options) []pinning.Slot {
	t.Helper()
	cpus := make([]int, ncpu)
	for i := range cpus {
		cpus[i] = i
	}
	l, err := pinning.Plan(pinning.Node{CPUs: cpus, MemoryGB: 16}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l.Slots
}

func TestTaskCPUsAndDevices(t *testing.T) {
	block := layoutOf(t, 8, pinning.Options{CoresPerWorker: 2, CPUAffinity: "block", Accelerators: []string{"0", "1", "2", "3"}})
	rev := layoutOf(t, 8, pinning.Options{CoresPerWorker: 2, CPUAffinity: "block-reverse"})
	pairs := layoutOf(t, 8, pinning.Options{CoresPerWorker: 4, CPUAffinity: "block", Accelerators: []string{"0,1", "2,3"}})
	mps := layoutOf(t, 4, pinning.Options{CoresPerWorker: 1, CPUAffinity: "block", GPUs: 1, Accelerators: []string{"0", "1", "2", "3"}})
	none := layoutOf(t, 8, pinning.Options{CoresPerWorker: 2})
	for _, c := range []struct {
		name     string
		slots    []pinning.Slot
		ranks    []int
		cores    int
		gpus     int
		wantCPUs []int
		wantDevs []string
	}{
		{"3 cores on two slots of 2", block, []int{1, 2}, 3, 0, []int{2, 3, 4}, []string{"1", "2"}},
		{"all CPUs when cores not asked", block, []int{0, 1}, 0, 0, []int{0, 1, 2, 3}, []string{"0", "1"}},
		{"the first GPU of the union", block, []int{2, 3}, 0, 1, []int{4, 5, 6, 7}, []string{"2"}},
		{"affinity order kept (block-reverse)", rev, []int{0, 1}, 3, 0, []int{6, 7, 4}, nil},
		{"entries of two devices", pairs, []int{0, 1}, 0, 3, []int{0, 1, 2, 3, 4, 5, 6, 7}, []string{"0", "1", "2"}},
		{"MPS slots of one GPU give it once", mps, []int{0, 1, 2}, 2, 0, []int{0, 1}, []string{"0"}},
		{"unpinned: no CPUs", none, []int{0, 1}, 4, 0, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := taskCPUs(c.slots, c.ranks, c.cores); !reflect.DeepEqual(got, c.wantCPUs) {
				t.Errorf("taskCPUs = %v, want %v", got, c.wantCPUs)
			}
			if got := taskDevices(c.slots, c.ranks, c.gpus); !reflect.DeepEqual(got, c.wantDevs) {
				t.Errorf("taskDevices = %q, want %q", got, c.wantDevs)
			}
		})
	}
}

func TestPlacedEnv(t *testing.T) {
	env, unset := placedEnv([]int{4, 5, 6}, 3, []string{"1", "2"}, true, pinning.VendorAMD)
	want := map[string]string{"OMP_NUM_THREADS": "3", "GOMP_CPU_AFFINITY": "4,5,6", "KMP_AFFINITY": "explicit,proclist=[4,5,6]",
		"OMP_PLACES": "{4},{5},{6}", "OMP_PROC_BIND": "close", "ROCR_VISIBLE_DEVICES": "1,2"}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("pinned, AMD: %v\nwant %v", env, want)
	}
	if !reflect.DeepEqual(unset, []string{"CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL", "HIP_VISIBLE_DEVICES"}) {
		t.Errorf("unset %v", unset)
	}
	env, _ = placedEnv(nil, 4, nil, false, "")
	if !reflect.DeepEqual(env, map[string]string{"OMP_NUM_THREADS": "4"}) {
		t.Errorf("unpinned with cores: %v", env)
	}
	env, _ = placedEnv(nil, 0, []string{"0"}, true, pinning.VendorNVIDIA)
	if !reflect.DeepEqual(env, map[string]string{"CUDA_VISIBLE_DEVICES": "0"}) {
		t.Errorf("unpinned GPU task: %v", env)
	}
}

func TestSlotsFor(t *testing.T) {
	mps := pinning.Shape{Slots: 8, CPUs: 1, GPUs: 1, MemBytes: 1 << 30, SlotsPerGPU: 2}
	if got := slotsFor(&wire.Task{Gpus: 2}, mps); got != 4 {
		t.Errorf("2 GPUs of slots sharing them by two: %d slots, want 4", got)
	}
	sh := pinning.Shape{Slots: 4, CPUs: 2, GPUs: 1, MemBytes: 1 << 30}
	for _, c := range []struct {
		t    *wire.Task
		want int
	}{
		{&wire.Task{}, 1},
		{&wire.Task{Cores: 1}, 1},
		{&wire.Task{Cores: 3}, 2},
		{&wire.Task{Gpus: 3}, 3},
		{&wire.Task{MemBytes: 1<<30 + 1}, 2},
		{&wire.Task{Cores: 1, Slots: 3}, 3}, // the interchange's charge, larger
		{&wire.Task{Cores: 64}, 4},          // never more than the pool has
	} {
		if got := slotsFor(c.t, sh); got != c.want {
			t.Errorf("slotsFor(%v) = %d, want %d", c.t, got, c.want)
		}
	}
}
