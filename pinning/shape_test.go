package pinning

import (
	"reflect"
	"testing"
)

func TestLayoutShape(t *testing.T) {
	cpus := func(n int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	for _, c := range []struct {
		name string
		node Node
		opts Options
		want Shape
	}{
		{"unpinned, one CPU a slot", Node{CPUs: cpus(16), MemoryGB: 64}, Options{CoresPerWorker: 1},
			Shape{Slots: 16, CPUs: 1, MemBytes: 4 << 30}},
		{"unpinned, fewer slots share the CPUs", Node{CPUs: cpus(16), MemoryGB: 64}, Options{CoresPerWorker: 1, MaxWorkersPerNode: 3},
			Shape{Slots: 3, CPUs: 5, MemBytes: (64<<30 + 2) / 3}},
		{"unpinned, more slots than CPUs: one each", Node{CPUs: cpus(2), MemoryGB: 4}, Options{CoresPerWorker: 0.5},
			Shape{Slots: 4, CPUs: 1, MemBytes: 1 << 30}},
		{"block, the smallest slot", Node{CPUs: cpus(10), MemoryGB: 10}, Options{CoresPerWorker: 3, CPUAffinity: "block"},
			Shape{Slots: 3, CPUs: 3, MemBytes: (10<<30 + 2) / 3}},
		{"alternating, uneven slots", Node{CPUs: cpus(7), MemoryGB: 7}, Options{CoresPerWorker: 2, CPUAffinity: "alternating"},
			Shape{Slots: 3, CPUs: 2, MemBytes: (7<<30 + 2) / 3}},
		{"Polaris-like: 4 GPUs, 8 CPUs each", Node{CPUs: cpus(32), MemoryGB: 512},
			Options{CoresPerWorker: 8, CPUAffinity: "block", Accelerators: []string{"0", "1", "2", "3"}},
			Shape{Slots: 4, CPUs: 8, GPUs: 1, MemBytes: 128 << 30}},
		{"two devices a slot", Node{CPUs: cpus(8), MemoryGB: 8},
			Options{CoresPerWorker: 1, Accelerators: []string{"0,1", "2,3"}},
			Shape{Slots: 2, CPUs: 4, GPUs: 2, MemBytes: 4 << 30}},
		{"mem_per_worker sets a slot's memory", Node{CPUs: cpus(8), MemoryGB: 100}, Options{CoresPerWorker: 1, MemPerWorker: 2},
			Shape{Slots: 8, CPUs: 1, MemBytes: 2 << 30}},
		{"MPS: 8 slots on 2 GPUs, one device each", Node{CPUs: cpus(8), MemoryGB: 8},
			Options{CoresPerWorker: 1, GPUs: 2, Accelerators: []string{"0", "1", "2", "3", "4", "5", "6", "7"}},
			Shape{Slots: 8, CPUs: 1, GPUs: 1, MemBytes: 1 << 30, SlotsPerGPU: 4}},
		{"MPS, uneven: 6 slots on 4 GPUs", Node{CPUs: cpus(12), MemoryGB: 12},
			Options{CoresPerWorker: 2, GPUs: 4, Accelerators: []string{"0", "1", "2", "3", "4", "5"}},
			Shape{Slots: 6, CPUs: 2, GPUs: 1, MemBytes: 2 << 30, SlotsPerGPU: 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, err := Plan(c.node, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := l.Shape(c.node, c.opts); !reflect.DeepEqual(got, c.want) {
				t.Errorf("Shape = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestDevices(t *testing.T) {
	for in, want := range map[string][]string{"": nil, "0": {"0"}, "0,1": {"0", "1"}, " 2 , 3 ,": {"2", "3"}, "1.0": {"1.0"}} {
		if got := Devices(in); !reflect.DeepEqual(got, want) {
			t.Errorf("Devices(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDeviceCountAndCPURange(t *testing.T) {
	l := &Layout{Slots: []Slot{{Accelerator: "0"}, {Accelerator: "0"}, {Accelerator: "1,2"}, {}}}
	if n := l.DeviceCount(); n != 3 {
		t.Errorf("DeviceCount of slots on 0, 0, 1+2 and none = %d, want 3", n)
	}
	if got := CPURange(3); len(got) != 3 || got[0] != 0 || got[2] != 2 {
		t.Errorf("CPURange(3) = %v, want [0 1 2]", got)
	}
}
