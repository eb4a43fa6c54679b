package config

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/htex/htex/pinning"
	"github.com/htex/htex/wire"
)

// Validate checks ranges and combinations and returns an *Error naming every
// bad field with its value, or nil.
func (c *Config) Validate() error {
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	validateSlots(&c.Executor, bad)
	validateChannels(&c.Executor, bad)
	validateProvider(&c.Provider, bad)
	validateStrategy(&c.Strategy, bad)
	if len(p) > 0 {
		return &Error{Problems: p}
	}
	return nil
}

// reporter notes one problem, naming the field and its value.
type reporter func(format string, args ...any)

// validateSlots checks what shapes a pool's slots: workers, cores,
// memory, CPU affinity and accelerators.
func validateSlots(e *Executor, bad reporter) {
	if strings.TrimSpace(e.Label) == "" {
		bad("executor.label %q: must not be empty (leave it out for %q)", e.Label, DefaultLabel)
	}
	if e.MaxWorkersPerNode < 0 {
		bad("executor.max_workers_per_node %d: must be >= 0 (0 = unlimited)", e.MaxWorkersPerNode)
	}
	switch cpw := e.CoresPerWorker; {
	case math.IsNaN(cpw) || math.IsInf(cpw, 0):
		bad("executor.cores_per_worker %g: must be a finite number (leave it out for 1)", cpw)
	case cpw <= 0:
		bad("executor.cores_per_worker %g: must be > 0 (leave it out for 1)", cpw)
	}
	switch mpw := e.MemPerWorker; {
	case math.IsNaN(mpw) || math.IsInf(mpw, 0):
		bad("executor.mem_per_worker %g: must be a finite number of GB", mpw)
	case mpw < 0:
		bad("executor.mem_per_worker %g: must be >= 0", mpw)
	}
	if err := checkAffinity(e.CPUAffinity); err != nil {
		bad("executor.cpu_affinity %q: %v", e.CPUAffinity, err)
	} else if ranks := strings.Count(e.CPUAffinity, ":"); strings.HasPrefix(e.CPUAffinity, "list:") {
		// The slot count can never exceed max_workers_per_node or the
		// number of accelerator entries, whatever the node.
		limit, by := 0, ""
		if e.MaxWorkersPerNode > 0 {
			limit, by = e.MaxWorkersPerNode, "max_workers_per_node"
		}
		if n := len(e.AvailableAccelerators); n > 0 && (limit == 0 || n < limit) {
			limit, by = n, "available_accelerators"
		}
		if limit > 0 && ranks > limit {
			bad("executor.cpu_affinity %q: %d ranks, but %s allows at most %d workers per node", e.CPUAffinity, ranks, by, limit)
		}
	}
	for i, a := range e.AvailableAccelerators {
		if strings.TrimSpace(a) == "" {
			bad("executor.available_accelerators[%d] %q: must not be empty", i, a)
		}
	}
	if err := CheckVendor(e.AcceleratorVendor); err != nil {
		bad("executor.accelerator_vendor %q: %v", e.AcceleratorVendor, err)
	}
	if e.GPUsPerNode < 0 || e.GPUsPerNode > MaxAccelerators {
		bad("executor.gpus_per_node %d: must be in [0, %d]", e.GPUsPerNode, MaxAccelerators)
	}
	if e.PrefetchCapacity < 0 || e.PrefetchCapacity > MaxPrefetch {
		bad("executor.prefetch_capacity %d: must be in [0, %d]", e.PrefetchCapacity, MaxPrefetch)
	}
}

// validateChannels checks the executor's talk with pools and clients:
// heartbeats, retries, output tails and ports.
func validateChannels(e *Executor, bad reporter) {
	if e.HeartbeatPeriod <= 0 {
		bad("executor.heartbeat_period %s: must be > 0 (leave it out for %s)", e.HeartbeatPeriod.D(), DefaultHeartbeatPeriod)
	}
	if e.HeartbeatThreshold <= e.HeartbeatPeriod {
		bad("executor.heartbeat_threshold %s: must be greater than heartbeat_period %s", e.HeartbeatThreshold.D(), e.HeartbeatPeriod.D())
	}
	if err := wire.CheckRetries(e.Retries); err != nil {
		bad("executor.retries %d: %v", e.Retries, err)
	}
	if err := wire.CheckTailBytes(e.OutputTailBytes); err != nil {
		bad("executor.output_tail_bytes %d: %v", e.OutputTailBytes, err)
	}
	checkPort := func(name string, v int) {
		if v < 0 || v > 65535 {
			bad("executor.%s %d: must be in [0, 65535]", name, v)
		}
	}
	checkPort("worker_port", e.WorkerPort)
	checkPort("client_port", e.ClientPort)
	if r := e.WorkerPortRange; r != [2]int{} {
		checkPort("worker_port_range[0]", r[0])
		checkPort("worker_port_range[1]", r[1])
		if r[0] > r[1] {
			bad("executor.worker_port_range %v: first port must not exceed the second", r)
		}
	}
}

// validateProvider checks the blocks: their batch system, size, count,
// walltime, launcher and polling.
func validateProvider(pr *Provider, bad reporter) {
	switch pr.Kind {
	case "local", "slurm", "pbs":
	default:
		bad("provider.kind %q: want local, slurm or pbs", pr.Kind)
	}
	if pr.NodesPerBlock < 1 {
		bad("provider.nodes_per_block %d: must be >= 1", pr.NodesPerBlock)
	}
	if pr.MinBlocks < 0 {
		bad("provider.min_blocks %d: must be >= 0", pr.MinBlocks)
	}
	if *pr.InitBlocks < 0 {
		bad("provider.init_blocks %d: must be >= 0", *pr.InitBlocks)
	}
	if !(pr.MinBlocks <= *pr.InitBlocks && *pr.InitBlocks <= *pr.MaxBlocks) {
		bad("provider: want min_blocks <= init_blocks <= max_blocks, got %d, %d, %d", pr.MinBlocks, *pr.InitBlocks, *pr.MaxBlocks)
	}
	if par := *pr.Parallelism; !(par >= 0 && par <= 1) { // NaN fails too
		bad("provider.parallelism %g: must be in [0, 1]", par)
	}
	if _, err := ParseWalltime(pr.Walltime); err != nil {
		bad("provider.%v", err)
	}
	switch pr.Launcher {
	case "single", "srun", "mpiexec", "mpiexec-openmpi", "aprun", "pbsdsh", "simple":
	default:
		bad("provider.launcher %q: want single, srun, mpiexec, mpiexec-openmpi, aprun, pbsdsh or simple", pr.Launcher)
	}
	if pr.CmdTimeout <= 0 {
		bad("provider.cmd_timeout %s: must be > 0", pr.CmdTimeout.D())
	}
	if pr.StatusPollingInterval <= 0 {
		bad("provider.status_polling_interval %s: must be > 0", pr.StatusPollingInterval.D())
	}
	if pr.StatusPollingFast <= 0 {
		bad("provider.status_polling_fast %s: must be > 0", pr.StatusPollingFast.D())
	} else if pr.StatusPollingFast > pr.StatusPollingInterval && pr.StatusPollingInterval > 0 {
		bad("provider.status_polling_fast %s: must not exceed status_polling_interval %s", pr.StatusPollingFast.D(), pr.StatusPollingInterval.D())
	}
	if pr.CoresPerNode < 0 || pr.CoresPerNode > wire.MaxCores {
		bad("provider.cores_per_node %d: must be in [0, %d]", pr.CoresPerNode, wire.MaxCores)
	}
	if pr.MemPerNode < 0 {
		bad("provider.mem_per_node %d: must be >= 0", pr.MemPerNode)
	}
	if pr.CPUsPerNode < 0 || pr.CPUsPerNode > wire.MaxCores {
		bad("provider.cpus_per_node %d: must be in [0, %d]", pr.CPUsPerNode, wire.MaxCores)
	}

	if pr.Kind == "pbs" && pr.Place == "" {
		bad("provider.place %q: want a PBS place such as scatter, pack or free (leave it out for scatter)", pr.Place)
	}
}

// validateStrategy checks the scaler's settings.
func validateStrategy(s *Strategy, bad reporter) {
	switch s.Kind {
	case "none", "simple", "htex_auto_scale":
	default:
		bad("strategy.kind %q: want none, simple or htex_auto_scale", s.Kind)
	}
	if s.MaxIdletime < 0 {
		bad("strategy.max_idletime %s: must be >= 0", s.MaxIdletime.D())
	}
	if s.Period <= 0 {
		bad("strategy.period %s: must be > 0 (leave it out for %s)", s.Period.D(), DefaultStrategyPeriod)
	}
	if s.MaxBlockFailures < 1 {
		bad("strategy.max_block_failures %d: must be >= 1", s.MaxBlockFailures)
	}
	if s.FailureBackoff <= 0 {
		bad("strategy.failure_backoff %s: must be > 0", s.FailureBackoff.D())
	}
	if s.MaxPending < 0 {
		bad("strategy.max_pending %s: must be >= 0 (0 = off)", s.MaxPending.D())
	}
}

// checkAffinity checks the shape of cpu_affinity; the list: syntax itself is
// checked by the pinning package when the node's CPUs are known.
func checkAffinity(v string) error {
	switch v {
	case "none", "block", "block-reverse", "alternating":
		return nil
	}
	if strings.HasPrefix(v, "list:") {
		if len(v) == len("list:") {
			return fmt.Errorf("list: needs one rank per worker, e.g. list:0-3:4-7")
		}
		return nil
	}
	return fmt.Errorf("want none, block, block-reverse, alternating or a list such as list:0-3:4-7")
}

// vendorAliases are names people give the vendors (their runtimes, their
// old names), offered as suggestions only: the value is never rewritten.
var vendorAliases = map[string]string{
	"cuda": pinning.VendorNVIDIA, "nv": pinning.VendorNVIDIA,
	"rocm": pinning.VendorAMD, "hip": pinning.VendorAMD, "rocr": pinning.VendorAMD, "ati": pinning.VendorAMD,
	"ze": pinning.VendorIntel, "level_zero": pinning.VendorIntel, "levelzero": pinning.VendorIntel,
	"level-zero": pinning.VendorIntel, "oneapi": pinning.VendorIntel, "xpu": pinning.VendorIntel, "sycl": pinning.VendorIntel,
}

// CheckVendor checks accelerator_vendor and suggests the value meant by a
// typo, another case or a runtime's name ("cuda" -> "nvidia").
func CheckVendor(v string) error {
	if slices.Contains(pinning.VendorSettings, v) {
		return nil
	}
	want := "want " + pinning.VendorChoices()
	low := strings.ToLower(strings.TrimSpace(v))
	if alias, ok := vendorAliases[low]; ok {
		return fmt.Errorf("%s (did you mean %q?)", want, alias)
	}
	best, bestD := "", 1<<30
	for _, s := range pinning.VendorSettings {
		if d := editDistance(low, s); d < bestD {
			best, bestD = s, d
		}
	}
	if bestD <= max(1, len(best)/3) {
		return fmt.Errorf("%s (did you mean %q?)", want, best)
	}
	return errors.New(want)
}
