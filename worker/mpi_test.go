package worker

import (
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/htex/htex/pinning"
	"github.com/htex/htex/wire"
)

func TestMPIVars(t *testing.T) {
	task := &wire.Task{Id: 3, MpiNodes: []string{"n2", "n1"}, RanksPerNode: 4}
	got, err := mpiVars("mpiexec", task)
	want := []string{"HTEX_MPI_PREFIX=mpiexec -n 8 --ppn 4 --hosts n2,n1", "HTEX_MPI_NODELIST=n2,n1", "HTEX_NUM_NODES=2",
		"HTEX_RANKS_PER_NODE=4", "HTEX_NUM_RANKS=8"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("mpiVars = %q, %v; want %q", got, err, want)
	}
	if _, err := mpiVars("", task); err == nil || !strings.Contains(err.Error(), "cannot start the ranks of a task on 2 nodes") {
		t.Errorf("no launcher: %v, want a refusal that says why", err)
	}
	if _, err := mpiVars("srun", &wire.Task{MpiNodes: []string{"n1", "n2;reboot"}}); err == nil || !strings.Contains(err.Error(), `"n2;reboot"`) {
		t.Errorf("bad node name: %v, want a refusal naming it", err)
	}
}

// pinnedSlot is the only slot of a pool with the given MPI launcher,
// pinned to CPU 0 with the pinning variables of a one-CPU, one-GPU slot.
func pinnedSlot(t *testing.T, mpi string) *slot {
	t.Helper()
	s := pinning.Slot{CPUs: []int{0}, Env: map[string]string{"OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "3"}}
	p, err := New(Options{Layout: &pinning.Layout{Slots: []pinning.Slot{s}}, TailBytes: 64 << 10, MPILauncher: mpi})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.devnull.Close() })
	base := []string{"PATH=/usr/bin:/bin", "CUDA_VISIBLE_DEVICES=0,1,2,3", "HTEX_TASK_ID=99", "HTEX_NUM_NODES=9"}
	return newSlot(p, s, base)
}

// onSlotThread runs a task as the slot's goroutine does: on a thread
// pinned to the slot's CPUs.
func onSlotThread(t *testing.T, s *slot, task *wire.Task) *wire.Result {
	t.Helper()
	done := make(chan *wire.Result, 1)
	go func() {
		runtime.LockOSThread()
		var set unix.CPUSet
		set.Set(0)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			t.Errorf("pin the test's thread: %v", err)
		}
		if len(task.MpiNodes) > 0 {
			done <- s.execMPI(task)
		} else {
			done <- s.execTask(task, s.env, nil)
		}
	}()
	select {
	case r := <-done:
		return r
	case <-time.After(time.Minute):
		t.Fatal("task not reported within a minute")
		return nil
	}
}

// TestMPITaskGetsTheNode: a multi-node task of a pinned slot runs with the
// pool's CPU mask and the pool's environment (the node's GPUs, no slot
// OMP_NUM_THREADS), plus the HTEX_MPI_* variables, and reports its nodes;
// an ordinary task of the same slot keeps the slot's CPU and variables.
func TestMPITaskGetsTheNode(t *testing.T) {
	s := pinnedSlot(t, "srun")
	show := []string{"sh", "-c", `grep Cpus_allowed_list /proc/self/status | cut -f2; env | grep -E '^(HTEX_|OMP_NUM|CUDA_VIS)' | sort`}
	r := onSlotThread(t, s, &wire.Task{Id: 5, JobId: 1, Argv: show, MpiNodes: []string{"n1", "n2"}, RanksPerNode: 2, ArrayIndex: -1})
	if r.ErrorKind != wire.ErrorKind_NONE {
		t.Fatalf("task failed: %v %s", r.ErrorKind, r.Error)
	}
	lines := strings.Split(strings.TrimSpace(string(r.Stdout)), "\n")
	var nodeMask unix.CPUSet
	if err := unix.SchedGetaffinity(0, &nodeMask); err != nil {
		t.Fatal(err)
	}
	if nodeMask.Count() > 1 && lines[0] == "0" {
		t.Errorf("multi-node task ran pinned to the slot's CPU 0, want the node's %d CPUs", nodeMask.Count())
	}
	want := []string{"CUDA_VISIBLE_DEVICES=0,1,2,3", "HTEX_ATTEMPT=0", "HTEX_JOB_ID=1",
		"HTEX_MPI_NODELIST=n1,n2", "HTEX_MPI_PREFIX=srun -N 2 -n 4 --ntasks-per-node 2 --nodelist n1,n2 --overlap",
		"HTEX_NUM_NODES=2", "HTEX_NUM_RANKS=4", "HTEX_RANKS_PER_NODE=2", "HTEX_TASK_ID=5", "HTEX_WORKER_RANK=0"}
	if !slices.Equal(lines[1:], want) {
		t.Errorf("environment\n%q\nwant\n%q", lines[1:], want)
	}
	if !slices.Equal(r.Nodes, []string{"n1", "n2"}) {
		t.Errorf("result nodes %q, want n1,n2", r.Nodes)
	}

	r = onSlotThread(t, s, &wire.Task{Id: 6, JobId: 1, Argv: show, ArrayIndex: -1})
	lines = strings.Split(strings.TrimSpace(string(r.Stdout)), "\n")
	want = []string{"0", "CUDA_VISIBLE_DEVICES=3", "HTEX_ATTEMPT=0", "HTEX_JOB_ID=1", "HTEX_TASK_ID=6", "HTEX_WORKER_RANK=0", "OMP_NUM_THREADS=1"}
	if r.ErrorKind != wire.ErrorKind_NONE || !slices.Equal(lines, want) || len(r.Nodes) != 0 {
		t.Errorf("ordinary task: %v %s\n%q\nwant\n%q (nodes %q)", r.ErrorKind, r.Error, lines, want, r.Nodes)
	}
}

func TestPoolMPILauncherChecked(t *testing.T) {
	_, err := New(Options{Layout: &pinning.Layout{Slots: []pinning.Slot{{}}}, TailBytes: 1024, MPILauncher: "aprun"})
	if err == nil || !strings.Contains(err.Error(), `MPI launcher "aprun"`) {
		t.Errorf("New with MPI launcher aprun: %v, want a refusal", err)
	}
}
