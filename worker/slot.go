package worker

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"

	zmq "github.com/pebbe/zmq4"
	"golang.org/x/sys/unix"

	"github.com/htex/htex/pinning"
	"github.com/htex/htex/wire"
)

// slot runs one task at a time on an OS thread whose CPU mask is the
// slot's CPUs, so that every task process (and its children) inherits it.
type slot struct {
	p    *Pool
	rank int
	cpus []int
	env  []string
	// mpiEnv is the environment of a multi-node task: the pool's, without
	// the slot's pinning (mpi.go).
	mpiEnv []string
	buf    []byte // for reading task output
	// maskErr: the slot's mask could not be set back (execTask).
	maskErr error
}

func newSlot(p *Pool, s pinning.Slot, base []string) *slot {
	sl := &slot{p: p, rank: s.Rank, cpus: s.CPUs, buf: make([]byte, 64<<10)}
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// Inherited variables the slot sets itself, or must not pass on
	// (pinning.Slot.Unset: e.g. a node-wide HIP_VISIBLE_DEVICES that would
	// index past an AMD slot's one device), are left out of the base.
	override := map[string]bool{"HTEX_WORKER_RANK": true}
	for _, k := range keys {
		override[k] = true
	}
	for _, k := range s.Unset {
		override[k] = true
	}
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if !override[k] && !mpiOwn(k) { // a task's own HTEX_ variables come from its pool alone
			sl.env = append(sl.env, kv)
		}
	}
	for _, k := range keys {
		sl.env = append(sl.env, k+"="+s.Env[k])
	}
	sl.env = append(sl.env, "HTEX_WORKER_RANK="+strconv.Itoa(s.Rank))
	sl.mpiEnv = mpiBaseEnv(base, s.Rank)
	return sl
}

// run takes the tasks the board places on this slot until it closes. It
// is owned by Pool.Run.
func (sl *slot) run(b *board, wakeEndpoint string) error {
	if len(sl.cpus) > 0 {
		// A pinned slot forks from a thread of its own whose mask is the
		// slot's CPUs. The thread is never unlocked: it ends with the
		// goroutine, taking its mask with it. An unpinned slot needs no
		// thread of its own, and saves the hand-offs to it.
		runtime.LockOSThread()
		var set unix.CPUSet
		for _, c := range sl.cpus {
			set.Set(c)
		}
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("slot %d: set CPU affinity %v: %w", sl.rank, sl.cpus, err)
		}
	}
	wake, err := zmq.NewSocket(zmq.PUSH)
	if err != nil {
		return err
	}
	defer wake.Close()
	wake.SetLinger(0)
	wake.SetSndhwm(1)
	if err := wake.Connect(wakeEndpoint); err != nil {
		return err
	}
	b.release(sl.rank, nil)
	for {
		t := b.wait(sl.rank)
		if t == nil {
			return nil
		}
		var r *wire.Result
		switch {
		case len(t.MpiNodes) > 0:
			r = sl.execMPI(t)
		case sized(t):
			r = sl.runPlaced(t, b.heldBy(t.Id))
		default:
			// A task of one slot got the slot's CPUs and accelerator: its
			// result says nothing more (node and rank say which slot), so
			// that results and journal rows stay as small as they were.
			r = sl.execTask(t, sl.env, nil)
		}
		if sl.maskErr != nil {
			return sl.maskErr
		}
		// The slots are free before the interchange hears of the result,
		// so that a task it sends for them finds them free.
		b.release(sl.rank, t)
		if sl.p.fin.post(r) {
			wake.SendBytes(nil, zmq.DONTWAIT)
		}
	}
}

// runPlaced runs a task of a size placed on the slots ranks (this one
// first) with its own CPU mask and variables (place.go), and says in its
// result what it got.
func (sl *slot) runPlaced(t *wire.Task, ranks []int) *wire.Result {
	if len(ranks) == 0 {
		ranks = []int{sl.rank}
	}
	slots := sl.p.opt.Layout.Slots
	cpus := taskCPUs(slots, ranks, int(t.Cores))
	devs := taskDevices(slots, ranks, int(t.Gpus))
	accel := len(sl.p.opt.Accelerators) > 0 || slots[sl.rank].Accelerator != ""
	vars, unset := placedEnv(cpus, int(t.Cores), devs, accel, sl.p.opt.Vendor)
	var mask []int
	if len(sl.cpus) > 0 {
		mask = cpus
	}
	r := sl.execTask(t, sl.p.placedBase(vars, unset, sl.rank), mask)
	r.Cpus, r.Gpus = pinning.FormatCPUList(cpus), strings.Join(devs, ",")
	return r
}

func environ() []string { return os.Environ() }

// placedBase is the environment of a task of a size: the pool's
// environment without the variables any slot sets or must not pass on
// (pinning), without those the task's placement sets or unsets, then the
// placement's variables (sorted) and HTEX_WORKER_RANK.
func (p *Pool) placedBase(vars map[string]string, unset []string, rank int) []string {
	drop := map[string]bool{"HTEX_WORKER_RANK": true, "HTEX_JOB_ID": true, "HTEX_ARRAY_INDEX": true, "HTEX_ATTEMPT": true}
	for _, s := range p.opt.Layout.Slots {
		for k := range s.Env {
			drop[k] = true
		}
		for _, k := range s.Unset {
			drop[k] = true
		}
	}
	for k := range vars {
		drop[k] = true
	}
	for _, k := range unset {
		drop[k] = true
	}
	var env []string
	for _, kv := range p.base {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] && !strings.HasPrefix(k, "HTEX_TASK_") {
			env = append(env, kv)
		}
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+vars[k])
	}
	return append(env, "HTEX_WORKER_RANK="+strconv.Itoa(rank))
}
