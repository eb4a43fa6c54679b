package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
)

const twoBlockConfig = `
[executor]
max_workers_per_node = 2
cores_per_worker = 0.01
heartbeat_period = 1
heartbeat_threshold = 4
[provider]
kind = "local"
init_blocks = 2
max_blocks = 2
`

type blockJSON = testenv.Block

func blocksOf(t *testing.T, d *testenv.Daemon) []blockJSON {
	t.Helper()
	return d.Status().Blocks
}

// killBlock kills a local block the hard way, as a node failure would: the
// block's process group (batch script and worker pool) with SIGKILL, and
// then every task process it left behind (tasks run in process groups of
// their own), found by pid through the block id and run directory in
// their environment.
func killBlock(t *testing.T, d *testenv.Daemon, b blockJSON) {
	t.Helper()
	leader, err := strconv.Atoi(b.JobID)
	if err != nil || leader <= 1 {
		t.Fatalf("block %d: local job id %q is not a pid", b.ID, b.JobID)
	}
	if err := syscall.Kill(-leader, syscall.SIGKILL); err != nil {
		t.Fatalf("kill block %d's process group %d: %v", b.ID, leader, err)
	}
	marks := [][]byte{[]byte("HTEX_BLOCK_ID=" + strconv.FormatInt(b.ID, 10)), []byte("HTEX_RUN_DIR=" + d.RunDir)}
	entries, _ := os.ReadDir("/proc")
	killed := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue // gone, or not ours
		}
		hit := 0
		for _, kv := range bytes.Split(env, []byte{0}) {
			for _, m := range marks {
				if bytes.Equal(kv, m) {
					hit++
				}
			}
		}
		if hit == len(marks) && syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	t.Logf("killed block %d: process group %d and %d left-over processes", b.ID, leader, killed)
}

// runLostPool submits 40 two-second tasks to two blocks of 2 slots, kills
// one block once it runs tasks, and returns the results.
func runLostPool(t *testing.T, submitArgs ...string) ([]testenv.Result, blockJSON, int) {
	d := testenv.StartDaemon(t, twoBlockConfig)
	job := d.Submit(append(append([]string{"--array", "1-40"}, submitArgs...), "--", "sleep", "2")...)
	var victim blockJSON
	bbWaitFor(t, "both blocks to run tasks", 2*time.Minute, func() bool {
		busy := 0
		for _, b := range blocksOf(t, d) {
			if b.Busy > 0 && b.JobID != "" {
				busy++
				victim = b
			}
		}
		return busy == 2
	})
	killBlock(t, d, victim)
	code := d.WaitJob(job)
	rs := d.Results(job)
	if len(rs) != 40 {
		t.Fatalf("got %d results, want 40\n%s", len(rs), testenv.Tail(d.Log(), 40))
	}
	return rs, victim, code
}

// TestLostPoolRetried: the tasks of a pool killed with its block run again
// elsewhere; every task ends succeeded, none is lost.
func TestLostPoolRetried(t *testing.T) {
	testenv.Integration(t)
	rs, victim, code := runLostPool(t)
	if code != 0 {
		t.Errorf("wait: exit %d, want 0", code)
	}
	retried := 0
	for _, r := range rs {
		if r.State != "succeeded" || r.ExitCode != 0 {
			t.Errorf("task %d: state %s exit %d error_kind %q (%s)", r.TaskID, r.State, r.ExitCode, r.ErrorKind, r.Error)
		}
		if r.Attempts == 2 {
			retried++
			if r.BlockID == victim.ID {
				t.Errorf("task %d: retried, yet its last attempt ran on the killed block %d", r.TaskID, victim.ID)
			}
		} else if r.Attempts != 1 {
			t.Errorf("task %d: %d attempts", r.TaskID, r.Attempts)
		}
	}
	if retried == 0 {
		t.Errorf("no task has 2 attempts, though block %d was killed while it ran tasks", victim.ID)
	}
	t.Logf("%d tasks ran a second time", retried)
}

// TestLostPoolNoRetries: with --retries 0 the tasks of the lost pool fail
// with error kind manager_lost; the others succeed.
func TestLostPoolNoRetries(t *testing.T) {
	testenv.Integration(t)
	rs, victim, code := runLostPool(t, "--retries", "0")
	if code != 1 {
		t.Errorf("wait: exit %d, want 1 (tasks failed)", code)
	}
	lost := 0
	for _, r := range rs {
		switch {
		case r.State == "succeeded" && r.Attempts == 1:
		case r.State == "failed" && r.ErrorKind == "manager_lost" && r.Attempts == 1 && r.BlockID == victim.ID:
			lost++
		default:
			t.Errorf("task %d: %s", r.TaskID, fmt.Sprintf("state %s error_kind %q attempts %d (%s)", r.State, r.ErrorKind, r.Attempts, r.Error))
		}
	}
	if lost == 0 {
		t.Errorf("no task failed with manager_lost, though block %d was killed while it ran tasks", victim.ID)
	}
	t.Logf("%d tasks failed with manager_lost", lost)
}
