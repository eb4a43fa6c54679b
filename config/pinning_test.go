package config

import (
	"reflect"
	"testing"

	"github.com/htex/htex/pinning"
)

func TestPinningOptions(t *testing.T) {
	c, err := Parse(`
[executor]
max_workers_per_node = 8
cores_per_worker = 2.5
mem_per_worker = 4
cpu_affinity = "list:0-3:4-7"
available_accelerators = ["0,1", "2,3"]
gpus_per_node = 4
allow_shared_cpus = true
accelerator_vendor = "amd"
`)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Executor.PinningOptions()
	want := pinning.Options{
		MaxWorkersPerNode: 8,
		CoresPerWorker:    2.5,
		MemPerWorker:      4,
		CPUAffinity:       "list:0-3:4-7",
		Accelerators:      []string{"0,1", "2,3"},
		GPUs:              4,
		AllowSharedCPUs:   true,
		Vendor:            "amd",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PinningOptions() = %+v\nwant %+v", got, want)
	}
	got.Accelerators[0] = "9"
	if c.Executor.AvailableAccelerators[0] != "0,1" {
		t.Error("PinningOptions shares the accelerator list with the config")
	}

	// auto is left for the node to resolve: unknown until then.
	if v := Default().Executor.PinningOptions().Vendor; v != pinning.VendorUnknown {
		t.Errorf("PinningOptions().Vendor with auto = %q, want unknown", v)
	}

	// The defaults give a plan: one slot per CPU, no pinning.
	l, err := pinning.Plan(pinning.Node{CPUs: []int{0, 1, 2}}, Default().Executor.PinningOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Slots) != 3 || l.LimitedBy != pinning.LimitCores || l.Slots[0].CPUs != nil {
		t.Errorf("default plan: %+v", l)
	}
}
