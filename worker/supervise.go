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
// below it are gone.
func Supervise(argv []string) (int, error) {
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
	reap := time.NewTicker(2 * time.Second)
	defer reap.Stop()
	for {
		select {
		case s := <-sigs:
			cmd.Process.Signal(s)
			continue
		case <-reap.C: // orphans that ended while the pool runs
			reapZombies(pool)
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
