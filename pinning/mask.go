package pinning

import "fmt"

// LauncherBindHint explains a pool whose CPU mask (allowed) is smaller than
// its node (online, the CPUs the kernel runs): the launcher that started it
// bound it to part of the node, as srun does by default with the
// task/affinity plugin (one hardware thread on OLCF Frontier, whose default
// is --cpu-bind=threads with -c 1). It returns "" when the pool has every
// online CPU. The text names the launcher options that give a pool its
// whole node; the caller adds it to a layout error, or logs it when the
// mask cut the slot count.
func LauncherBindHint(allowed, online []int) string {
	if len(online) == 0 || len(allowed) >= len(online) {
		return ""
	}
	return fmt.Sprintf("this pool may run on %d of the node's %d CPUs (its CPU mask is %s): the launcher bound it to part of the node. "+
		"Start one pool per node with every CPU of the node: srun --cpu-bind=none and no -c/--cpus-per-task smaller than the node "+
		"(htex's srun launcher does this; check launcher_options, SLURM_CPU_BIND and SRUN_CPUS_PER_TASK in worker_init), "+
		"mpiexec --cpu-bind none (MPICH, Cray PALS), mpiexec --bind-to none (Open MPI), aprun -cc none; "+
		"on a shared node, ask for the whole node (exclusive = true or cores_per_node)",
		len(allowed), len(online), FormatCPUList(allowed))
}

// CutByMask reports whether the layout has fewer slots than the options
// would give without the CPU count: cores_per_worker limited it while
// max_workers_per_node or the accelerators allow more. Combined with a
// LauncherBindHint, the pool says why it runs fewer slots than configured.
func (l *Layout) CutByMask() bool {
	if l.LimitedBy != LimitCores {
		return false
	}
	for _, b := range l.Bounds {
		if b.Option != LimitCores && b.Option != LimitMemory && b.Slots > len(l.Slots) {
			return true
		}
	}
	return false
}
