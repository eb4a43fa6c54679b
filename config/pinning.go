package config

import (
	"slices"

	"github.com/htex/htex/pinning"
)

// PinningOptions converts the executor's slot and pinning options for
// pinning.Plan. GPUs is gpus_per_node as written: 0 means "detect", which is
// the caller's job (the worker pool calls detect.GPUs; htexctl plan leaves 0
// so that its output does not depend on the machine it runs on).
func (e *Executor) PinningOptions() pinning.Options {
	return pinning.Options{
		MaxWorkersPerNode: e.MaxWorkersPerNode,
		CoresPerWorker:    e.CoresPerWorker,
		MemPerWorker:      e.MemPerWorker,
		CPUAffinity:       e.CPUAffinity,
		Accelerators:      slices.Clone([]string(e.AvailableAccelerators)),
		GPUs:              e.GPUsPerNode,
		AllowSharedCPUs:   e.AllowSharedCPUs,
	}
}
