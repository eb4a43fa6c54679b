package worker

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/htex/htex/pinning"
	"github.com/htex/htex/wire"
)

// killGrace is how long a timed-out or cancelled task has between SIGTERM
// and SIGKILL.
const killGrace = 2 * time.Second

// running tracks the process groups of running tasks so that the pool's
// loop can cancel them.
type running struct {
	mu        sync.Mutex
	pgids     map[uint64]int
	cancelled map[uint64]bool
}

func newRunning() *running {
	return &running{pgids: map[uint64]int{}, cancelled: map[uint64]bool{}}
}

func (r *running) start(id uint64, pgid int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancelled[id] {
		return false
	}
	r.pgids[id] = pgid
	return true
}

func (r *running) end(id uint64) (cancelled bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pgids, id)
	c := r.cancelled[id]
	delete(r.cancelled, id)
	return c
}

// isCancelled reports (and forgets) a cancellation of a task not started.
func (r *running) takeCancelled(id uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.cancelled[id]
	delete(r.cancelled, id)
	return c
}

// cancel marks a task cancelled and signals its group if it runs.
func (r *running) cancel(id uint64) {
	r.mu.Lock()
	r.cancelled[id] = true
	pgid, ok := r.pgids[id]
	r.mu.Unlock()
	if ok {
		terminate(pgid)
	}
}

// killAll kills every running task's group (pool shutdown).
func (r *running) killAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, pgid := range r.pgids {
		unix.Kill(-pgid, unix.SIGKILL)
	}
}

// terminate sends SIGTERM to a group, then SIGKILL after killGrace.
func terminate(pgid int) {
	unix.Kill(-pgid, unix.SIGTERM)
	time.AfterFunc(killGrace, func() { unix.Kill(-pgid, unix.SIGKILL) })
}

// pathCache remembers where argv[0] was found.
type pathCache struct {
	mu   sync.Mutex
	path string
	m    map[string]string
}

func (c *pathCache) lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	c.mu.Lock()
	p, ok := c.m[name]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	for _, dir := range filepath.SplitList(c.path) {
		if dir == "" {
			dir = "."
		}
		cand := filepath.Join(dir, name)
		if st, err := os.Stat(cand); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			c.mu.Lock()
			c.m[name] = cand
			c.mu.Unlock()
			return cand, nil
		}
	}
	return "", fmt.Errorf("%q: executable file not found in PATH", name)
}

// execTask runs one task to completion on the calling thread (whose CPU
// mask the child inherits) with the environment base plus the task's own
// variables, and returns its result. A mask (a task of a size on pinned
// slots, a multi-node task on a pinned slot) is set on the thread for the
// fork and the slot's own set back after it.
func (s *slot) execTask(t *wire.Task, base []string, mask []int) *wire.Result {
	res := &wire.Result{TaskId: t.Id, Rank: int32(s.rank), Attempt: t.Attempt, Nodes: t.MpiNodes}
	res.StartUnixUs = time.Now().UnixMicro()
	fail := func(kind wire.ErrorKind, format string, args ...any) *wire.Result {
		res.ErrorKind = kind
		res.Error = fmt.Sprintf(format, args...)
		res.ExitCode = -1
		res.EndUnixUs = time.Now().UnixMicro()
		return res
	}
	if s.p.run.takeCancelled(t.Id) {
		return fail(wire.ErrorKind_CANCELLED, "cancelled before it started")
	}
	path, err := s.p.paths.lookPath(t.Argv[0])
	if err != nil {
		return fail(wire.ErrorKind_SPAWN, "%v", err)
	}
	var outs [2]stream
	childFds, err := openOutputs(&outs, t, s.p.opt.TailBytes)
	if err != nil {
		return fail(wire.ErrorKind_SPAWN, "%v", err)
	}
	pid, pidfd, err := s.spawn(path, t, base, mask, childFds)
	if err != nil {
		outs[0].close()
		outs[1].close()
		return fail(wire.ErrorKind_SPAWN, "%v", err)
	}
	if pidfd >= 0 {
		defer unix.Close(pidfd)
	}
	o := s.await(t, pid, pidfd, &outs)
	res.EndUnixUs = time.Now().UnixMicro()
	res.Stdout, res.Stderr = outs[0].tail.bytes(), outs[1].tail.bytes()
	classify(res, o)
	return res
}

// openOutputs opens the task's stdout and stderr (pipes, or its files)
// and returns the ends the child gets; on an error nothing stays open.
func openOutputs(outs *[2]stream, t *wire.Task, tailBytes int) (childFds [2]int, err error) {
	for i, file := range [2]string{t.StdoutPath, t.StderrPath} {
		w, err := outs[i].open(file, tailBytes)
		if err != nil {
			for j := range i {
				unix.Close(childFds[j])
				outs[j].close()
			}
			return childFds, fmt.Errorf("%s: %w", [2]string{"stdout", "stderr"}[i], err)
		}
		childFds[i] = w
	}
	return childFds, nil
}

// spawn forks and execs the task in its own process group, with the CPU
// mask (if any) set on the thread for the fork, and closes the child's
// ends of its outputs. pidfd is -1 where the kernel has no pidfds.
func (s *slot) spawn(path string, t *wire.Task, base []string, mask []int, childFds [2]int) (pid, pidfd int, err error) {
	defer unix.Close(childFds[0])
	defer unix.Close(childFds[1])
	pidfd = -1
	attr := &syscall.ProcAttr{
		Dir:   t.Cwd,
		Env:   taskEnv(base, t),
		Files: []uintptr{s.p.devnull.Fd(), uintptr(childFds[0]), uintptr(childFds[1])},
		// Pdeathsig: the task dies with its pool (supervise.go).
		Sys: &syscall.SysProcAttr{Setpgid: true, PidFD: &pidfd, Pdeathsig: syscall.SIGKILL},
	}
	if mask != nil {
		if err := setMask(mask); err != nil {
			return 0, -1, fmt.Errorf("set the CPU mask %s: %w", pinning.FormatCPUList(mask), err)
		}
	}
	pid, err = syscall.ForkExec(path, t.Argv, attr)
	if mask != nil {
		if merr := setMask(s.cpus); merr != nil { // the slot's thread must not keep another's mask: run stops
			s.maskErr = fmt.Errorf("slot %d: set CPU affinity %v back after a task of a size: %w", s.rank, s.cpus, merr)
		}
	}
	if err != nil {
		return 0, -1, spawnError(t.Argv[0], t.Cwd, err)
	}
	return pid, pidfd, nil
}

// await collects the task's outputs until it ends, enforcing its time
// limit, kills what it left behind in its group, and says how it ended.
func (s *slot) await(t *wire.Task, pid, pidfd int, outs *[2]stream) outcome {
	if !s.p.run.start(t.Id, pid) {
		terminate(pid)
	}
	o := outcome{timeout: time.Duration(t.TimeoutMs) * time.Millisecond}
	var timedOut atomic.Bool
	var timer *time.Timer
	if o.timeout > 0 {
		timer = time.AfterFunc(o.timeout, func() {
			timedOut.Store(true)
			terminate(pid)
		})
	}
	s.collect(outs, pidfd)
	for {
		_, o.waitErr = syscall.Wait4(pid, &o.status, 0, nil)
		if !errors.Is(o.waitErr, syscall.EINTR) {
			break
		}
	}
	if timer != nil {
		timer.Stop()
	}
	// Leftover background processes of the task would keep its slot's CPUs
	// busy: the group goes with its leader.
	unix.Kill(-pid, unix.SIGKILL)
	o.cancelled = s.p.run.end(t.Id)
	s.drain(outs)
	o.timedOut = timedOut.Load()
	return o
}

// outcome is how a task's process ended, as its slot saw it.
type outcome struct {
	waitErr   error              // wait4 failed
	cancelled bool               // the pool cancelled it while it ran
	timedOut  bool               // the pool killed it at its time limit
	timeout   time.Duration      // that limit
	status    syscall.WaitStatus // the process's status
}

// classify sets the result's error kind, exit code, signal and message
// from how the task ended: the pool's own verdicts (a failed wait, a
// cancel, the time limit) before what the process's status says.
func classify(res *wire.Result, o outcome) {
	switch {
	case o.waitErr != nil:
		res.ErrorKind, res.ExitCode, res.Error = wire.ErrorKind_SPAWN, -1, "wait: "+o.waitErr.Error()
	case o.cancelled:
		res.ErrorKind, res.ExitCode, res.Error = wire.ErrorKind_CANCELLED, -1, "cancelled while running"
	case o.timedOut:
		res.ErrorKind, res.ExitCode = wire.ErrorKind_TIMEOUT, -1
		res.Error = fmt.Sprintf("killed at its time limit of %s", o.timeout)
	case o.status.Signaled():
		res.ErrorKind, res.ExitCode, res.Signal = wire.ErrorKind_SIGNAL, -1, int32(o.status.Signal())
		res.Error = "killed by signal " + o.status.Signal().String()
	case o.status.ExitStatus() != 0:
		res.ErrorKind, res.ExitCode = wire.ErrorKind_EXIT, int32(o.status.ExitStatus())
		res.Error = "exit status " + strconv.Itoa(o.status.ExitStatus())
	}
}

// stream collects one output stream of a task: through a pipe whose tail
// the slot keeps, or into a file whose tail is read when the task ends.
type stream struct {
	fd   int // read end of the pipe; -1 once closed or for a file
	path string
	tail *tail
}

// open prepares the stream and returns the descriptor the task writes to.
func (st *stream) open(path string, tailBytes int) (int, error) {
	st.fd, st.path, st.tail = -1, path, &tail{max: tailBytes}
	if path != "" {
		return unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return -1, err
	}
	st.fd = p[0]
	return p[1], nil
}

// read reads what one read gives into the tail and closes the pipe at its
// end. It is called only when poll says the pipe is readable.
func (st *stream) read(buf []byte) {
	n, err := unix.Read(st.fd, buf)
	if n > 0 {
		st.tail.Write(buf[:n])
		return
	}
	if err != unix.EINTR && err != unix.EAGAIN {
		st.close()
	}
}

func (st *stream) close() {
	if st.fd >= 0 {
		unix.Close(st.fd)
		st.fd = -1
	}
}

// collect reads the task's output pipes on the slot's own thread, with no
// goroutines, until the task exits (its pidfd becomes readable). Without a
// pidfd (kernels before 5.3) it reads until both pipes are closed.
func (s *slot) collect(outs *[2]stream, pidfd int) {
	var fds [3]unix.PollFd
	var which [3]int
	for {
		n := 0
		for i := range outs {
			if outs[i].fd >= 0 {
				fds[n], which[n] = unix.PollFd{Fd: int32(outs[i].fd), Events: unix.POLLIN}, i
				n++
			}
		}
		if pidfd >= 0 {
			fds[n], which[n] = unix.PollFd{Fd: int32(pidfd), Events: unix.POLLIN}, -1
			n++
		}
		if n == 0 {
			return
		}
		if _, err := unix.Poll(fds[:n], -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		for k := range n {
			if fds[k].Revents == 0 {
				continue
			}
			if which[k] < 0 {
				return
			}
			outs[which[k]].read(s.buf)
		}
	}
}

// drain reads what the task left in its pipes without waiting for a
// writer that outlived it (a process that left the task's group), closes
// them, and reads the tails of output files.
func (s *slot) drain(outs *[2]stream) {
	for i := range outs {
		st := &outs[i]
		for st.fd >= 0 {
			fds := [1]unix.PollFd{{Fd: int32(st.fd), Events: unix.POLLIN}}
			if n, err := unix.Poll(fds[:], 0); err == unix.EINTR {
				continue
			} else if n <= 0 {
				break
			}
			st.read(s.buf)
		}
		st.close()
		if st.path != "" {
			readTail(st.path, st.tail)
		}
	}
}

func readTail(path string, tl *tail) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > int64(tl.max) {
		f.Seek(st.Size()-int64(tl.max), io.SeekStart)
	}
	io.Copy(tl, f)
}

// taskEnv is a slot's environment (base) plus the task's own variables; a
// task variable overrides a slot variable of the same name.
func taskEnv(base []string, t *wire.Task) []string {
	env := make([]string, 0, len(base)+6+len(t.Env))
	if len(t.Env) == 0 {
		env = append(env, base...)
	} else {
		override := make(map[string]bool, len(t.Env))
		for _, kv := range t.Env {
			k, _, _ := strings.Cut(kv, "=")
			override[k] = true
		}
		for _, kv := range base {
			k, _, _ := strings.Cut(kv, "=")
			if !override[k] {
				env = append(env, kv)
			}
		}
	}
	env = append(env,
		"HTEX_TASK_ID="+strconv.FormatUint(t.Id, 10),
		"HTEX_JOB_ID="+strconv.FormatUint(t.JobId, 10),
		"HTEX_ATTEMPT="+strconv.Itoa(int(t.Attempt)))
	if t.ArrayIndex >= 0 {
		env = append(env, "HTEX_ARRAY_INDEX="+strconv.FormatInt(t.ArrayIndex, 10))
	}
	return append(env, t.Env...)
}

// setMask sets the calling thread's CPU mask.
func setMask(cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	return unix.SchedSetaffinity(0, &set)
}
