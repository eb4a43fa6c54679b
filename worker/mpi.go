package worker

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/htex/htex/launcher"
	"github.com/htex/htex/wire"
)

// Multi-node (MPI) tasks. The interchange sends such a task, with the
// nodes of its gang (Task.mpi_nodes, this pool's node first), only to a
// pool that registered an MPI launcher, after it has stopped giving tasks
// to every pool of the gang. The pool runs it in one slot, but on the
// whole node: with the pool's own CPU mask rather than the slot's, and
// with the pool's environment rather than the slot's pinning variables,
// since the ranks it starts on this node need the node's CPUs and
// accelerators. Its environment tells it how to start its ranks:
//
//	HTEX_MPI_PREFIX      the launcher command for exactly its nodes and
//	                     ranks (launcher.Prefix): `$HTEX_MPI_PREFIX ./app`
//	HTEX_MPI_NODELIST    its nodes, comma-separated, this node first
//	HTEX_NUM_NODES       how many
//	HTEX_RANKS_PER_NODE  ranks per node
//	HTEX_NUM_RANKS       nodes × ranks per node
//
// (the names follow Parsl's PARSL_MPI_PREFIX, PARSL_MPI_NODELIST,
// PARSL_NUM_NODES, PARSL_RANKS_PER_NODE and PARSL_NUM_RANKS,
// https://parsl.readthedocs.io/en/stable/userguide/apps/mpi_apps.html).

// mpiVars returns the variables of a multi-node task, or why this pool
// cannot run it.
func mpiVars(kind string, t *wire.Task) ([]string, error) {
	if kind == "" {
		return nil, fmt.Errorf("this pool cannot start the ranks of a task on %d nodes: its block's launcher has no MPI form (the pool registered no MPI launcher)", len(t.MpiNodes))
	}
	r := int(max(t.RanksPerNode, 1))
	prefix, err := launcher.Prefix(kind, t.MpiNodes, r)
	if err != nil {
		return nil, err
	}
	n := len(t.MpiNodes)
	return []string{
		"HTEX_MPI_PREFIX=" + prefix,
		"HTEX_MPI_NODELIST=" + strings.Join(t.MpiNodes, ","),
		"HTEX_NUM_NODES=" + strconv.Itoa(n),
		"HTEX_RANKS_PER_NODE=" + strconv.Itoa(r),
		"HTEX_NUM_RANKS=" + strconv.Itoa(n*r),
	}, nil
}

// mpiOwn reports the variables every task gets from its pool alone,
// never from the pool's own environment.
func mpiOwn(k string) bool {
	switch k {
	case "HTEX_JOB_ID", "HTEX_ARRAY_INDEX", "HTEX_ATTEMPT", "HTEX_WORKER_RANK", "HTEX_MPI_PREFIX", "HTEX_MPI_NODELIST",
		"HTEX_NUM_NODES", "HTEX_RANKS_PER_NODE", "HTEX_NUM_RANKS":
		return true
	}
	return strings.HasPrefix(k, "HTEX_TASK_")
}

// mpiBaseEnv is the environment of a multi-node task run by slot rank:
// the pool's (base), without the slot's pinning.
func mpiBaseEnv(base []string, rank int) []string {
	env := make([]string, 0, len(base)+1)
	for _, kv := range base {
		if k, _, _ := strings.Cut(kv, "="); !mpiOwn(k) {
			env = append(env, kv)
		}
	}
	return append(env, "HTEX_WORKER_RANK="+strconv.Itoa(rank))
}

// execMPI runs a multi-node task on the whole node: with the pool's CPU
// mask (when the slot is pinned; an unpinned slot's thread has it) and the
// pool's environment plus the task's HTEX_MPI_* variables. The board has
// given it every slot of the pool.
func (s *slot) execMPI(t *wire.Task) *wire.Result {
	vars, err := mpiVars(s.p.opt.MPILauncher, t)
	if err != nil { // Pool.Run refuses such a task before it gets here
		return &wire.Result{TaskId: t.Id, Rank: int32(s.rank), Attempt: t.Attempt, Nodes: t.MpiNodes, ExitCode: -1,
			ErrorKind: wire.ErrorKind_SPAWN, Error: err.Error(), EndUnixUs: time.Now().UnixMicro()}
	}
	var mask []int
	if len(s.cpus) > 0 {
		for c := range 64 * len(s.p.nodeCPUs) { // CPUs the set can hold
			if s.p.nodeCPUs.IsSet(c) {
				mask = append(mask, c)
			}
		}
	}
	return s.execTask(t, append(slices.Clip(s.mpiEnv), vars...), mask)
}
