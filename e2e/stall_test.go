package e2e

// Temporary stalls of worker pools must not stop the scaler: a pool
// stopped (SIGSTOP) past heartbeat_threshold gives up and exits 1 when it
// runs again, its block ends failed, yet the block ran tasks, so it is not
// a start failure and the failed-block limit is not reached, however often
// it happens.

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
)

func TestStalledPoolsDoNotHaltScaler(t *testing.T) {
	testenv.Integration(t)
	t.Parallel()
	d := testenv.StartDaemon(t, scConfig("",
		"init_blocks = 1\nmin_blocks = 1\nmax_blocks = 1", `kind = "simple"`+"\nmax_block_failures = 3"))
	job := d.Submit("--array", "1-40", "--retries", "10", "--", "sleep", "1")

	const stalls = 4 // more than max_block_failures
	stopped := map[int64]bool{}
	for i := range stalls {
		// A block, not stalled before, whose pool runs tasks.
		victim := busyBlock(t, d, "a fresh block running tasks", stopped)
		stopped[victim.ID] = true
		stallBlock(t, victim, func() {})
		s := scWaitStatus(t, d, "the stalled block to end", blockEnded(victim.ID))
		if strings.Contains(s.Scaler, "stopped submitting") {
			t.Fatalf("stall %d: the scaler halted: %s\n%s", i, s.Scaler, testenv.Tail(d.Log(), 40))
		}
		t.Logf("stall %d: block %d ended; scaler: %s", i, victim.ID, s.Scaler)
	}
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait: exit %d\n%s", code, testenv.Tail(d.Log(), 60))
	}
	s := scStatusOf(t, d)
	if strings.Contains(s.Scaler, "stopped submitting") {
		t.Errorf("the scaler halted: %s", s.Scaler)
	}
	if len(s.Blocks) < stalls+1 {
		t.Errorf("%d blocks submitted, want at least %d (one after each stall)\n%s", len(s.Blocks), stalls+1, s.Raw)
	}
	failedAfterWork := strings.Count(d.Log(), "block failed after running tasks; not a start failure")
	if failedAfterWork < stalls {
		t.Errorf("%d blocks logged as failed after running tasks, want %d\n%s", failedAfterWork, stalls, testenv.Tail(d.Log(), 60))
	}
	for _, r := range d.Results(job) {
		if r.State != "succeeded" {
			t.Errorf("task %d: %s (%s %s)", r.TaskID, r.State, r.ErrorKind, r.Error)
		}
	}
}

// A pool stopped past heartbeat_threshold leaves when it runs again even
// if messages reached its socket during the stall (here the cancel of its
// task; in general a heartbeat reply in flight as it stopped): the
// interchange dropped it meanwhile, so it must not take that mail as word
// that it still belongs, re-register and run on.
func TestStalledPoolLeavesDespiteQueuedMessages(t *testing.T) {
	testenv.Integration(t)
	t.Parallel()
	d := testenv.StartDaemon(t, scConfig("",
		"init_blocks = 1\nmin_blocks = 1\nmax_blocks = 1", `kind = "simple"`))
	job := d.Submit("--", "sleep", "60")
	victim := busyBlock(t, d, "a block running the task", nil)
	stallBlock(t, victim, func() {
		d.MustRun("cancel", job) // the interchange tells the stopped pool
	})
	blockStderr := func() string {
		b, _ := os.ReadFile(victim.StderrPath)
		return "block stderr:\n" + testenv.Tail(string(b), 20)
	}
	d.WaitStatusShowing("the stalled block to end", time.Minute, blockEnded(victim.ID), blockStderr)
	if s := blockStderr(); !strings.Contains(s, "no word from the interchange") {
		t.Errorf("the pool did not leave for the silence; %s", s)
	}
	if strings.Contains(d.Log(), "held_tasks=1") {
		t.Errorf("the stalled pool registered again with its task:\n%s", testenv.Tail(d.Log(), 30))
	}
}

// busyBlock waits for a block whose pool runs tasks, other than those in
// skip.
func busyBlock(t *testing.T, d *testenv.Daemon, what string, skip map[int64]bool) scBlock {
	t.Helper()
	var victim scBlock
	scWaitStatus(t, d, what, func(s scStatus) bool {
		for _, b := range s.Blocks {
			if b.Busy > 0 && b.JobID != "" && !skip[b.ID] {
				victim = b
				return true
			}
		}
		return false
	})
	return victim
}

// stallBlock stops a local block's batch script and pool (its process
// group, whose id is the job id) for longer than heartbeat_threshold
// (5 s), calls during meanwhile, then lets them run again.
func stallBlock(t *testing.T, b scBlock, during func()) {
	t.Helper()
	pgid, err := strconv.Atoi(b.JobID)
	if err != nil || pgid <= 1 {
		t.Fatalf("block %d: local job id %q is not a pid", b.ID, b.JobID)
	}
	if err := syscall.Kill(-pgid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP block %d: %v", b.ID, err)
	}
	during()
	time.Sleep(7 * time.Second)
	if err := syscall.Kill(-pgid, syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT block %d: %v", b.ID, err)
	}
}

// blockEnded holds once block id has ended, failed or completed.
func blockEnded(id int64) func(scStatus) bool {
	return func(s scStatus) bool {
		for _, b := range s.Blocks {
			if b.ID == id {
				return b.State == "failed" || b.State == "completed"
			}
		}
		return false
	}
}
