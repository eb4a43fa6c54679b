package e2e

// A block that the batch system ends while its tasks run (scancel, qdel):
// whatever form the tasks' ends take (death by SIGTERM, a shell's exit 143,
// a trap that exits), they are lost with their pool and run again on the
// other block, never reported failed.

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
)

// Two kinds of task, 200 each, both ending with "done <index>":
//   - plainTask is a shell that runs a child: with the block's SIGTERM it
//     may die of the signal or report its child's as exit status 143;
//   - trapTask turns SIGTERM into exit 143 at once, as scripts that clean
//     up on TERM do (and as MPI launchers report their ranks' ends).
const (
	plainTask = `echo start {}; sleep 0.4; echo done {}`
	trapTask  = `trap 'echo caught TERM >&2; exit 143' TERM; echo start {}; sleep 0.4 & wait $!; echo done {}`
)

// submitKillTasks submits the two jobs of 200 tasks each.
func submitKillTasks(d *testenv.Daemon) []string {
	return []string{
		d.Submit("--array", "1-200", "--", "sh", "-c", plainTask),
		d.Submit("--array", "1-200", "--", "sh", "-c", trapTask),
	}
}

// checkKillTasks waits for the jobs and checks that every task succeeded
// with its own output, none on the ended block after a retry; it returns
// how many ran more than once.
func checkKillTasks(t *testing.T, d *testenv.Daemon, jobs []string, victim int64, diag func() string) int {
	t.Helper()
	retried, bad := 0, 0
	for _, job := range jobs {
		if code := d.WaitJob(job); code != 0 {
			t.Errorf("wait %s: exit %d", job, code)
		}
		rs := d.Results(job)
		if len(rs) != 200 {
			t.Fatalf("job %s: %d results, want 200", job, len(rs))
		}
		for _, r := range rs {
			want := fmt.Sprintf("start %d\ndone %d", *r.ArrayIndex, *r.ArrayIndex)
			if r.State != "succeeded" || r.ExitCode != 0 || strings.TrimSpace(r.Stdout) != want {
				if bad++; bad <= 5 {
					t.Errorf("job %s task %d: state %s exit %d kind %q error %q attempts %d block %d stdout %q stderr %q",
						job, r.TaskID, r.State, r.ExitCode, r.ErrorKind, r.Error, r.Attempts, r.BlockID, r.Stdout, r.Stderr)
				}
			}
			if r.Attempts >= 2 {
				retried++
				if r.BlockID == victim {
					t.Errorf("task %d ran again but its last run is on the ended block %d", r.TaskID, victim)
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of 400 tasks did not succeed\n%s", bad, diag())
	}
	if retried == 0 {
		t.Errorf("no task ran twice, though block %d was ended with tasks running", victim)
	}
	return retried
}

// bothBlocksBusy waits until both blocks run tasks and returns the first.
func bothBlocksBusy(t *testing.T, d *testenv.Daemon) testenv.Block {
	t.Helper()
	st := d.WaitStatus("both blocks running tasks", 2*time.Minute, func(s testenv.Status) bool {
		n := 0
		for _, b := range s.Blocks {
			if b.Busy > 0 {
				n++
			}
		}
		return n == 2
	})
	return st.Blocks[0]
}

// TestSlurmScancelShellTasks: 400 shell tasks on two blocks of two nodes;
// one block is scancel'ed while its tasks run. Slurm signals every process
// of the block's steps, the tasks included, at about the moment it signals
// the pools: every task still succeeds, those of the cancelled block on a
// second run.
func TestSlurmScancelShellTasks(t *testing.T) {
	requireSlurm(t)
	// Four slots per node (the tasks mostly sleep): more tasks running
	// when the block ends.
	cfg := slurmConfig(2, 2, 2, "", "cores_per_node = 2", `kind = "none"`)
	cfg = strings.Replace(cfg, "max_workers_per_node = 2\ncores_per_worker = 1\n", "max_workers_per_node = 4\ncores_per_worker = 0.5\n", 1)
	d := startSlurmDaemon(t, cfg)
	slurmWait(t, d, "four pools", 2*time.Minute, func(s slurmStatus) bool { return len(s.Pools) == 4 })
	jobs := submitKillTasks(d)
	victim := bothBlocksBusy(t, d)
	if out, err := exec.Command("scancel", victim.JobID).CombinedOutput(); err != nil {
		t.Fatalf("scancel %s: %v\n%s", victim.JobID, err, out)
	}
	retried := checkKillTasks(t, d, jobs, victim.ID, func() string {
		return testenv.Tail(d.Log(), 40) + "\n" + slurmBlockStderr(d)
	})
	t.Logf("scancel of block %d (Slurm job %s, %d tasks running): %d of 400 tasks ran twice", victim.ID, victim.JobID, victim.Busy, retried)
}

// TestPBSQdelShellTasks: the same with the PBS emulator's qdel, which, as a
// mom does, signals every process of the job's session.
func TestPBSQdelShellTasks(t *testing.T) {
	testenv.Integration(t)
	e := buildPBSEmulator(t)
	d := testenv.StartDaemonEnv(t, pbsConfig(2, "none"), e.env()...)
	pbsWaitStatus(t, d, "four pools (2 blocks x 2 nodes)", func(st pbsStatus) bool { return len(st.Pools) == 4 })
	jobs := submitKillTasks(d)
	victim := bothBlocksBusy(t, d)
	if out, err := e.command(t, "qdel", victim.JobID); err != nil {
		t.Fatalf("qdel %s: %v\n%s", victim.JobID, err, out)
	}
	retried := checkKillTasks(t, d, jobs, victim.ID, func() string { return testenv.Tail(d.Log(), 40) })
	t.Logf("qdel of block %d (%s, %d tasks running): %d of 400 tasks ran twice", victim.ID, victim.JobID, victim.Busy, retried)
}
