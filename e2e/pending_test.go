package e2e

// Blocks that the scheduler keeps waiting for a reason that never clears:
// status shows the scheduler's own reason, the daemon logs it once per
// block, and with strategy.max_pending the block is cancelled and counted
// toward max_block_failures. On the PBS emulator (a job held with
// `#PBS -h`) and on the local Slurm (`#SBATCH --hold`).

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
)

// checkHeldBlocks waits for a held block to show its reason, then for
// max_pending to cancel two of them and halt the scaler, and checks
// status, the daemon's log and the text of `htexctl status`.
func checkHeldBlocks(t *testing.T, d *testenv.Daemon, reason string) testenv.Status {
	t.Helper()
	d.Submit("--", "true") // work, so that the scaler wants a block again after each
	st := d.WaitStatus("a held block showing the scheduler's reason", 2*time.Minute, func(s testenv.Status) bool {
		return len(s.Blocks) > 0 && strings.Contains(s.Blocks[0].Message, reason)
	})
	b := st.Blocks[0]
	if b.State != "pending" && b.State != "held" {
		t.Errorf("block %+v: want pending or held", b)
	}
	if !strings.Contains(b.Message, "will not clear by itself") || !strings.Contains(b.Message, "strategy.max_pending 6s") {
		t.Errorf("block message %q: want it to say the wait will not end and what max_pending does", b.Message)
	}
	if text := d.MustRun("status"); !strings.Contains(text, reason) {
		t.Errorf("htexctl status lacks the scheduler's reason %q:\n%s", reason, text)
	}

	const halt = "stopped submitting blocks after 2 failed in a row"
	st = d.WaitStatus("max_pending to cancel two blocks and halt the scaler", 3*time.Minute, func(s testenv.Status) bool {
		return strings.Contains(s.Scaler, halt)
	})
	if len(st.Blocks) != 2 {
		t.Errorf("%d blocks, want 2 (max_block_failures)\n%s", len(st.Blocks), st.Raw)
	}
	for _, b := range st.Blocks {
		if b.State != "cancelled" || !strings.Contains(b.Message, "longer than strategy.max_pending 6s") ||
			!strings.Contains(b.Message, reason) {
			t.Errorf("block %d: state %q message %q: want cancelled for max_pending, with the reason", b.ID, b.State, b.Message)
		}
	}
	if !strings.Contains(st.Scaler, "resuming by itself at") || !strings.Contains(st.Scaler, "restart the daemon") {
		t.Errorf("scaler %q: want how it resumes", st.Scaler)
	}
	logData, err := os.ReadFile(filepath.Join(d.RunDir, "daemon.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(logData), "block waits for a reason that will not clear by itself"); n != 2 {
		t.Errorf("the reason was logged %d times, want once per block (2):\n%s", n, testenv.Tail(string(logData), 40))
	}
	return st
}

func TestPBSHeldBlockCancelledAfterMaxPending(t *testing.T) {
	testenv.Integration(t)
	e := buildPBSEmulator(t)
	cfg := strings.Replace(pbsConfig(1, "simple"), "walltime = ", "scheduler_options = \"#PBS -h\"\nwalltime = ", 1) +
		"max_pending = 6\nmax_block_failures = 2\nfailure_backoff = \"1h\"\n"
	d := testenv.StartDaemonEnv(t, cfg, e.env()...)
	checkHeldBlocks(t, d, "pbs says held")
}

func TestSlurmHeldBlockCancelledAfterMaxPending(t *testing.T) {
	requireSlurm(t)
	cfg := slurmConfig(1, 1, 1, "", `scheduler_options = "#SBATCH --hold"`,
		"kind = \"simple\"\nmax_pending = 6\nmax_block_failures = 2\nfailure_backoff = \"1h\"")
	d := startSlurmDaemon(t, cfg)
	// sbatch --hold gives JobHeldUser (as root too); scontrol hold by root
	// would give JobHeldAdmin.
	st := checkHeldBlocks(t, d, "slurm says JobHeldUser")
	for _, b := range st.Blocks { // the scheduler's side: the jobs were cancelled
		out, err := exec.Command("squeue", "-h", "-t", "all", "-j", b.JobID, "-o", "%t %r").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "CA ") {
			t.Errorf("job %s of block %d after max_pending: squeue says %q (%v), want CA", b.JobID, b.ID, out, err)
		}
	}
}
