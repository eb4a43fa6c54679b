package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
)

// TestEmptiedJournalRefused: a journal truncated to 0 bytes next to an
// earlier run's blocks is refused with what to do, instead of a fresh run
// whose job ids restart at 1.
func TestEmptiedJournalRefused(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, localConfig)
	job := d.Submit("--", "true")
	d.WaitJob(job)
	d.Stop()
	db := filepath.Join(d.RunDir, "htex.db")
	for _, p := range []string{db + "-wal", db + "-shm"} {
		os.Remove(p)
	}
	if err := os.Truncate(db, 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.Bin, "serve", "--config", d.Config, "--run-dir", d.RunDir)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("serve started over an emptied journal:\n%s", out)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 || !strings.Contains(string(out), "has 0 bytes") || !strings.Contains(string(out), "move the run directory aside") {
		t.Fatalf("serve: %v\n%s", err, out)
	}
	if st, err := os.Stat(db); err != nil || st.Size() != 0 {
		t.Fatalf("the journal was touched: %v", err)
	}
}

// TestDeletedConnectionFile: with the connection file of a running daemon
// deleted, the verbs say that the daemon runs and what to do, and the
// daemon writes the file again, after which they work (status used to say
// "start serve", serve "already serves, run stop", and stop "no daemon").
func TestDeletedConnectionFile(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, localConfig)
	connFile := filepath.Join(d.RunDir, "connection.json")
	if err := os.Remove(connFile); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := d.Run("status")
	if code == 0 {
		// the daemon was quicker: the file is back already
		t.Logf("status worked at once: %s", out)
	} else if !strings.Contains(errOut, "connection file is missing") || !strings.Contains(errOut, strconv.Itoa(d.Pid())) {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	bbWaitFor(t, "the connection file written again", 10*time.Second, func() bool {
		_, err := os.Stat(connFile)
		return err == nil
	})
	d.MustRun("status")
	if !strings.Contains(d.Log(), "connection file was deleted") {
		t.Errorf("the daemon did not log the rewrite:\n%s", testenv.Tail(d.Log(), 10))
	}
}
