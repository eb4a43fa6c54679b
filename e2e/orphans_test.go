package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
)

// taskPids reads the pids the tasks recorded (one per line).
func taskPids(t *testing.T, path string) []int {
	t.Helper()
	b, _ := os.ReadFile(path)
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procAlive: the process exists and is not a zombie.
func procAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] != 'Z'
}

func waitGone(pids []int, limit time.Duration) []int {
	deadline := time.Now().Add(limit)
	for {
		var alive []int
		for _, pid := range pids {
			if procAlive(pid) {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 || time.Now().After(deadline) {
			return alive
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestKilledPoolTakesItsTasks: kill -9 of a worker pool kills its tasks'
// whole process trees — the task leaders and the background processes they
// started in sessions of their own — so that nothing runs beside the
// retries; and `htexctl stop` leaves no task process behind.
func TestKilledPoolTakesItsTasks(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, failureConfig)
	pidsFile := filepath.Join(t.TempDir(), "pids")
	// Each attempt records its leader's pid ($$) and that of a grandchild
	// in a session (so a process group) of its own, then sleeps.
	job := d.Submit("--array", "1-2", "--shell", "--",
		"echo $$ >> "+pidsFile+"; setsid sleep 300 & echo $! >> "+pidsFile+"; sleep 300")
	deadline := time.Now().Add(30 * time.Second)
	for len(taskPids(t, pidsFile)) < 4 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	first := taskPids(t, pidsFile)
	if len(first) < 4 {
		t.Fatalf("tasks recorded %v, want 4 pids\n%s", first, testenv.Tail(d.Log(), 2000))
	}
	pool, _, ok := statOfPid(first[0])
	if !ok {
		t.Fatalf("task leader %d is gone before the kill", first[0])
	}
	if err := syscall.Kill(pool, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 pool %d: %v", pool, err)
	}
	if alive := waitGone(first, 10*time.Second); len(alive) > 0 {
		for _, pid := range alive {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		t.Fatalf("task processes %v of the killed pool %d still run 10 s later", alive, pool)
	}

	d.Stop()
	all := taskPids(t, pidsFile)
	if alive := waitGone(all, 10*time.Second); len(alive) > 0 {
		for _, pid := range alive {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		t.Fatalf("task processes %v outlived htexctl stop", alive)
	}
	t.Logf("job %s: %d task pids recorded, none left after the kill and the stop", job, len(all))
}

// statOfPid reads a process's parent pid and state from /proc/PID/stat.
func statOfPid(pid int) (ppid int, state byte, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if i < 0 || len(f) < 2 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0][0], err == nil
}

// TestStoppedPoolFreezesItsTasks: a pool stopped with SIGSTOP stops
// heartbeating and its tasks are run again elsewhere after the heartbeat
// threshold; its own task processes are stopped with it, and killed once
// the threshold has passed, so that no task runs beside its retry.
func TestStoppedPoolFreezesItsTasks(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, failureConfig+"init_blocks = 1\nmax_blocks = 2\n[strategy]\nperiod = 1\n")
	pidsFile := filepath.Join(t.TempDir(), "pids")
	job := d.Submit("--array", "1-2", "--shell", "--", "echo $$ >> "+pidsFile+"; sleep 8")
	deadline := time.Now().Add(30 * time.Second)
	for len(taskPids(t, pidsFile)) < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	first := taskPids(t, pidsFile)
	if len(first) < 2 {
		t.Fatalf("tasks recorded %v, want 2 pids", first)
	}
	pool, _, _ := statOfPid(first[0])
	syscall.Kill(pool, syscall.SIGSTOP)
	defer syscall.Kill(pool, syscall.SIGCONT)
	time.Sleep(time.Second)
	for _, pid := range first {
		if _, st, ok := statOfPid(pid); ok && st != 'T' {
			t.Errorf("task %d is in state %c one second after its pool stopped, want T (stopped)", pid, st)
		}
	}
	if alive := waitGone(first, 10*time.Second); len(alive) > 0 {
		t.Fatalf("tasks %v of a pool stopped past the heartbeat threshold still exist", alive)
	}
	syscall.Kill(pool, syscall.SIGCONT)
	if rc := d.WaitJob(job); rc != 0 {
		t.Fatalf("job after the stopped pool: rc %d\n%s", rc, testenv.Tail(d.Log(), 2000))
	}
	for _, r := range d.Results(job) {
		if r.State != "succeeded" || r.Attempts < 2 {
			t.Errorf("task %d: %s after %d attempts, want succeeded on a retry", r.TaskID, r.State, r.Attempts)
		}
	}
}
