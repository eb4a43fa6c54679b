package config

import (
	"slices"

	"github.com/htex/htex/pinning"
)

// PinningOptions converts the executor's slot and pinning options for
// pinning.Plan. GPUs is gpus_per_node as written: 0 means "detect", which is
// the caller's job (the worker pool calls detect.GPUs; htexctl plan leaves 0
// so that its output does not depend on the machine it runs on). Vendor is
// accelerator_vendor when it names a vendor, and "" (unknown) for auto: the
// caller resolves auto on the node (detect.Vendors, pinning.ResolveVendor).
func (e *Executor) PinningOptions() pinning.Options {
	vendor := e.AcceleratorVendor
	if vendor == pinning.VendorAuto {
		vendor = pinning.VendorUnknown
	}
	return pinning.Options{
		MaxWorkersPerNode: e.MaxWorkersPerNode,
		CoresPerWorker:    e.CoresPerWorker,
		MemPerWorker:      e.MemPerWorker,
		CPUAffinity:       e.CPUAffinity,
		Accelerators:      slices.Clone([]string(e.AvailableAccelerators)),
		GPUs:              e.GPUsPerNode,
		AllowSharedCPUs:   e.AllowSharedCPUs,
		Vendor:            vendor,
	}
}
