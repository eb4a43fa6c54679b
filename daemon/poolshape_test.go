package daemon

import (
	"errors"
	"testing"

	"github.com/htex/htex/config"
	"github.com/htex/htex/interchange"
	"github.com/htex/htex/pinning"
)

func TestConfigPoolShape(t *testing.T) {
	node2 := func() (pinning.Node, error) { return pinning.Node{CPUs: []int{0, 1}, MemoryGB: 4}, nil }
	for _, c := range []struct {
		name  string
		toml  string
		local func() (pinning.Node, error)
		want  interchange.PoolShape
	}{
		{"local: this machine", `[provider]
kind = "local"`, node2, interchange.PoolShape{Slots: 2, SlotCPUs: 1, SlotMemBytes: 2 << 30, CPUs: 2, MemBytes: 4 << 30}},
		{"local, the machine cannot be read", `[provider]
kind = "local"`, func() (pinning.Node, error) { return pinning.Node{}, errors.New("no") }, interchange.PoolShape{}},
		{"slurm: cores and memory per node", `[provider]
kind = "slurm"
cores_per_node = 16
mem_per_node = 64`, nil, interchange.PoolShape{Slots: 16, SlotCPUs: 1, SlotMemBytes: 4 << 30, CPUs: 16, MemBytes: 64 << 30}},
		{"slurm without memory: not checked", `[provider]
kind = "slurm"
cores_per_node = 8
[executor]
max_workers_per_node = 2`, nil, interchange.PoolShape{Slots: 2, SlotCPUs: 4, SlotMemBytes: 1 << 50, CPUs: 8}},
		{"slurm without cores: unknown", `[provider]
kind = "slurm"`, nil, interchange.PoolShape{}},
		{"pbs, Polaris-like: 4 GPUs, 8 CPUs a slot", `[provider]
kind = "pbs"
cpus_per_node = 32
mem_per_node = 512
[executor]
cores_per_worker = 8
cpu_affinity = "block"
available_accelerators = 4`, nil, interchange.PoolShape{Slots: 4, SlotCPUs: 8, SlotGPUs: 1, SlotMemBytes: 128 << 30,
			CPUs: 32, GPUs: 4, MemBytes: 512 << 30}},
		{"a layout that fails: unknown", `[provider]
kind = "slurm"
cores_per_node = 4
[executor]
cpu_affinity = "list:0:1:2:9"`, nil, interchange.PoolShape{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := config.Parse(c.toml)
			if err != nil {
				t.Fatal(err)
			}
			if got := configPoolShape(cfg, c.local); got != c.want {
				t.Errorf("= %+v\nwant %+v", got, c.want)
			}
		})
	}
}
