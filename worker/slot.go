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

// run takes tasks until the channel closes. It is owned by Pool.Run.
func (sl *slot) run(tasks <-chan *wire.Task, wakeEndpoint string) error {
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
	for t := range tasks {
		r := sl.exec(t)
		if sl.p.fin.post(r) {
			wake.SendBytes(nil, zmq.DONTWAIT)
		}
	}
	return nil
}

func environ() []string { return os.Environ() }
