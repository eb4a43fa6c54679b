package worker

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/htex/htex/config"
	"github.com/htex/htex/pinning"
	"github.com/htex/htex/wire"
)

// TestWorkedExamples checks the tables of docs/task-sizes.md: where the
// pure placement steps put tasks of a size on an idle node of Polaris,
// Frontier and Perlmutter, with the layouts of the site configs.
func TestWorkedExamples(t *testing.T) {
	frontierCPUs, _ := pinning.ParseCPUList("1-7,9-15,17-23,25-31,33-39,41-47,49-55,57-63,65-71,73-79,81-87,89-95,97-103,105-111,113-119,121-127")
	all := func(n int) []int { return firstN(n) }
	for _, site := range []struct {
		config string
		node   pinning.Node
		gpus   int
		cases  []struct {
			t                *wire.Task
			slots, cpus, dev string
		}
	}{
		{"polaris.toml", pinning.Node{CPUs: all(64), MemoryGB: 512}, 4, []struct {
			t                *wire.Task
			slots, cpus, dev string
		}{
			{&wire.Task{}, "0", "24-25,56-57", "0"},
			{&wire.Task{Cores: 8}, "0,1", "24-27,56-59", "0"},
			{&wire.Task{Gpus: 1}, "0,1,2,3", "24-31,56-63", "0"},
			{&wire.Task{Gpus: 1, Cores: 8}, "0,1,2,3", "24-27,56-59", "0"},
			{&wire.Task{Gpus: 2}, "0,1,2,3,4,5,6,7", "16-31,48-63", "0,1"},
		}},
		{"frontier.toml", pinning.Node{CPUs: frontierCPUs, MemoryGB: 512}, 8, []struct {
			t                *wire.Task
			slots, cpus, dev string
		}{
			{&wire.Task{}, "0", "49-55", "0"},
			{&wire.Task{Gpus: 2}, "0,1", "49-55,57-63", "0,1"},
			{&wire.Task{Cores: 14, Gpus: 1}, "0,1", "49-55,57-63", "0"},
			{&wire.Task{Cores: 16}, "0,1,2", "17-18,49-55,57-63", "0,1,2"},
			{&wire.Task{MemBytes: 100 << 30}, "0,1", "49-55,57-63", "0,1"},
		}},
		{"perlmutter-gpu.toml", pinning.Node{CPUs: all(128), MemoryGB: 256}, 4, []struct {
			t                *wire.Task
			slots, cpus, dev string
		}{
			{&wire.Task{Cores: 16, Gpus: 1}, "0", "48-63", "0"},
			{&wire.Task{Gpus: 2}, "0,1", "32-63,96-127", "0,1"},
			{&wire.Task{Cores: 40}, "0,1", "32-39,48-63,112-127", "0,1"},
			{&wire.Task{MemBytes: 100 << 30}, "0,1", "32-63,96-127", "0,1"},
		}},
	} {
		t.Run(site.config, func(t *testing.T) {
			cfg, err := config.Load(filepath.Join("..", "sites", site.config))
			if err != nil {
				t.Fatal(err)
			}
			opts := cfg.Executor.PinningOptions()
			opts.GPUs = site.gpus
			l, err := pinning.Plan(site.node, opts)
			if err != nil {
				t.Fatal(err)
			}
			sh := l.Shape(site.node, opts)
			devs := make([][]string, len(l.Slots))
			for i, s := range l.Slots {
				devs[i] = pinning.Devices(s.Accelerator)
			}
			for _, c := range site.cases {
				free := make([]bool, len(l.Slots))
				for i := range free {
					free[i] = true
				}
				var d [][]string
				if c.t.Gpus > 0 {
					d = devs
				}
				ranks := pickSlots(free, nil, d, slotsFor(c.t, sh))
				var rs []string
				for _, r := range ranks {
					rs = append(rs, strconv.Itoa(r))
				}
				cpus := taskCPUs(l.Slots, ranks, int(c.t.Cores))
				got := [3]string{strings.Join(rs, ","), pinning.FormatCPUList(cpus),
					strings.Join(taskDevices(l.Slots, ranks, int(c.t.Gpus)), ",")}
				if want := [3]string{c.slots, c.cpus, c.dev}; got != want {
					t.Errorf("%v: slots, CPUs, GPUs = %q, want %q", c.t, got, want)
				}
			}
		})
	}
}

func firstN(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
