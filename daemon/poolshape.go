package daemon

import (
	"github.com/htex/htex/config"
	"github.com/htex/htex/interchange"
	"github.com/htex/htex/pinning"
)

// configPoolShape is the shape of the pools a config starts, as far as
// the config (or, for the local provider, this machine) tells it before
// any pool registers, so that the interchange refuses at submit a task of
// a size that none of them could run (interchange.PoolShape). The CPUs of
// a node come from provider.cores_per_node (Slurm) or cpus_per_node (PBS),
// or this machine for the local provider (whose blocks run here, with the
// daemon's HTEX_CORES and HTEX_MEMORY_GB); the memory from
// provider.mem_per_node (GB) or this machine. Without a CPU count the
// shape is unknown (zero) and nothing is refused for its size; without a
// memory size, memory is not checked (SlotMemBytes is then the most a
// task may ask). The slots are those pinning.Plan lays out on such a node
// with the executor's options; a layout that fails there is unknown too
// (the pools will say why when they start).
func configPoolShape(cfg *config.Config, local func() (pinning.Node, error)) interchange.PoolShape {
	var node pinning.Node
	pr := cfg.Provider
	switch {
	case pr.Kind == "local" && local != nil:
		n, err := local()
		if err != nil {
			return interchange.PoolShape{}
		}
		node = n
	case pr.Kind == "slurm" && pr.CoresPerNode > 0:
		node.CPUs = pinning.CPURange(pr.CoresPerNode)
	case pr.Kind == "pbs" && pr.CPUsPerNode > 0:
		node.CPUs = pinning.CPURange(pr.CPUsPerNode)
	default:
		return interchange.PoolShape{}
	}
	memKnown := node.MemoryGB > 0
	if pr.MemPerNode > 0 {
		node.MemoryGB, memKnown = float64(pr.MemPerNode), true
	}
	opts := cfg.Executor.PinningOptions()
	l, err := pinning.Plan(node, opts)
	if err != nil {
		return interchange.PoolShape{}
	}
	sh := l.Shape(node, opts)
	ps := interchange.PoolShape{Slots: sh.Slots, SlotCPUs: sh.CPUs, SlotGPUs: sh.GPUs, SlotMemBytes: sh.MemBytes, SlotsPerGPU: sh.SlotsPerGPU,
		CPUs: len(node.CPUs), GPUs: l.DeviceCount(), MemBytes: int64(node.MemoryGB * (1 << 30))}
	if !memKnown {
		ps.SlotMemBytes, ps.MemBytes = 1<<50, 0 // not checked (wire.MaxMemBytes)
	}
	return ps
}
