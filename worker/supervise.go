package worker

// A pool that dies (OOM killer, kill -9, a crash) must take its tasks with
// it: otherwise they keep running beside their retries on another pool, and
// outlive `htexctl stop`. Two mechanisms, one per level:
//
//   - each task's leader gets PR_SET_PDEATHSIG = SIGKILL (exec.go): it dies
//     with the pool;
//   - the pool runs as the child of a small supervisor (Supervise: the same
//     binary, the process the batch script started) that is a child
//     subreaper (PR_SET_CHILD_SUBREAPER, prctl(2)). Whatever a task leaves
//     behind — background processes in their own group or session — is
//     re-parented to the supervisor, not to init, when its parent dies. When
//     the pool exits, however it exits, the supervisor kills every process
//     still below it and then exits with the pool's status.
//
// A pool that is stopped (SIGSTOP, a debugger) stops heartbeating, and the
// interchange runs its tasks again elsewhere once heartbeat_threshold has
// passed; its tasks, separate processes, would go on running beside their
// retries. The supervisor sees the pool stop (waitid(2), WSTOPPED) and
// stops every task process with it; if the pool stays stopped for the
// threshold, the supervisor kills them (their retries are under way); if
// it continues earlier, so do they (stopState).
//
// The supervisor forwards SIGTERM, SIGINT and SIGHUP to the pool, and the
// pool has PR_SET_PDEATHSIG = SIGKILL: if the supervisor itself is killed,
// the pool and its task leaders die too (only processes that left both
// the task's group and the pool's children then escape; a batch system's
// cgroup ends those with the job).

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SupervisedEnv is set in the environment of the pool that Supervise
// starts, so that the pool does not supervise itself again.
const SupervisedEnv = "HTEX_POOL_SUPERVISED"

// Supervise runs argv (this binary's own command line) again as the pool,
// and returns the exit status to exit with once the pool and every process
// below it are gone. stoppedLimit is how long the pool may stay stopped
// before its tasks are killed: the run's heartbeat_threshold.
func Supervise(argv []string, stoppedLimit time.Duration) (int, error) {
	// Pdeathsig is tied to the thread that forks: keep this one.
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return 0, fmt.Errorf("pool supervisor: become a child subreaper: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("pool supervisor: %w", err)
	}
	cmd := exec.Command(exe, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Env = append(os.Environ(), SupervisedEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("pool supervisor: start the pool: %w", err)
	}
	pool := cmd.Process.Pid
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	tick := time.NewTicker(stopPoll)
	defer tick.Stop()
	var stops stopState
	for n := 0; ; n++ {
		select {
		case s := <-sigs:
			cmd.Process.Signal(s)
			continue
		case now := <-tick.C:
			applyStop(pool, stops.step(poolStopEvent(pool), now, stoppedLimit))
			if n%8 == 0 { // orphans that ended while the pool runs
				reapZombies(pool)
			}
			continue
		case err = <-waited:
		}
		break
	}
	killBelow(5 * time.Second)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 1, err
}

// stopPoll is how often the supervisor looks whether the pool stopped.
const stopPoll = 250 * time.Millisecond

// si_code values of a SIGCHLD for a stopped and a continued child
// (CLD_STOPPED, CLD_CONTINUED: sigaction(2), include/uapi/asm-generic/siginfo.h).
const (
	cldStopped   = 5
	cldContinued = 6
)

type stopEvent int

const (
	noStopEvent stopEvent = iota
	poolStopped
	poolContinued
)

type stopAction int

const (
	leaveTasks  stopAction = iota
	freezeTasks            // SIGSTOP every task process
	thawTasks              // SIGCONT them
	killTasks              // SIGKILL them: the interchange has retried them
)

// stopState follows whether the pool is stopped. It is pure: events and
// the clock come in, what to do with the tasks goes out.
type stopState struct {
	stoppedAt time.Time // zero while the pool runs
	killed    bool      // the tasks of this stop were killed
}

func (s *stopState) step(ev stopEvent, now time.Time, limit time.Duration) stopAction {
	switch ev {
	case poolStopped:
		if s.stoppedAt.IsZero() {
			s.stoppedAt, s.killed = now, false
			return freezeTasks
		}
	case poolContinued:
		wasKilled := s.killed
		s.stoppedAt, s.killed = time.Time{}, false
		if !wasKilled {
			return thawTasks
		}
		return leaveTasks
	}
	if !s.stoppedAt.IsZero() && !s.killed && now.Sub(s.stoppedAt) >= limit {
		s.killed = true
		return killTasks
	}
	return leaveTasks
}

// poolStopEvent asks the kernel, without waiting, whether the pool has
// stopped or continued since the last call.
func poolStopEvent(pool int) stopEvent {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pool, &info, unix.WSTOPPED|unix.WCONTINUED|unix.WNOHANG, nil)
	if err != nil || info.Signo != int32(unix.SIGCHLD) {
		return noStopEvent
	}
	switch info.Code {
	case cldStopped:
		return poolStopped
	case cldContinued:
		return poolContinued
	}
	return noStopEvent
}

// applyStop signals every process below the supervisor except the pool.
func applyStop(pool int, a stopAction) {
	sig := map[stopAction]unix.Signal{freezeTasks: unix.SIGSTOP, thawTasks: unix.SIGCONT, killTasks: unix.SIGKILL}[a]
	if sig == 0 {
		return
	}
	for _, pid := range descendants() {
		if pid != pool {
			unix.Kill(pid, sig)
		}
	}
}

// descendants lists every process below this one.
func descendants() []int {
	kids := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _, ok := statOf(pid); ok {
			kids[ppid] = append(kids[ppid], pid)
		}
	}
	var out []int
	queue := []int{os.Getpid()}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range kids[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// children lists the pids whose parent is this process.
func children() []int {
	self := os.Getpid()
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _, ok := statOf(pid); ok && ppid == self {
			out = append(out, pid)
		}
	}
	return out
}

// statOf reads the parent pid and state of a process from /proc/PID/stat
// (fields 4 and 3, counted after the command name: proc(5)).
func statOf(pid int) (ppid int, state byte, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0][0], err == nil
}

// reapZombies waits for children that have ended, except the pool (its
// status belongs to cmd.Wait).
func reapZombies(pool int) {
	for _, pid := range children() {
		if _, st, ok := statOf(pid); ok && st == 'Z' && pid != pool {
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
	}
}

// killBelow kills every process below this one — their process groups
// too — and reaps them, until none is left or limit passes. Killed
// processes' own children are re-parented here (subreaper), so it repeats.
func killBelow(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		kids := children()
		for _, pid := range kids {
			if pgid, err := unix.Getpgid(pid); err == nil && pgid == pid {
				unix.Kill(-pid, unix.SIGKILL)
			}
			unix.Kill(pid, unix.SIGKILL)
		}
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
		if len(kids) == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
