package e2e

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
)

const failureConfig = `
[executor]
max_workers_per_node = 2
cores_per_worker = 0.01
heartbeat_period = 1
heartbeat_threshold = 4
[provider]
kind = "local"
`

// fill writes a file until the file system is full and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	return path
}

// TestDiskFullJournal: with the run directory's file system full, the
// daemon refuses submissions naming the cause, keeps serving, resumes with
// nothing lost when space returns, and stops on `htexctl stop` while full.
func TestDiskFullJournal(t *testing.T) {
	testenv.Integration(t)
	mnt := testenv.MountTmpfs(t, "20m")
	d := testenv.StartDaemonIn(t, filepath.Join(mnt, "run"), failureConfig)
	before := d.Submit("--array", "1-20", "--", "true")
	if rc := d.WaitJob(before); rc != 0 {
		t.Fatalf("wait before the disk fills: rc %d\n%s", rc, testenv.Tail(d.Log(), 3000))
	}

	t0 := time.Now()
	filler := fill(t, mnt)
	// A submission whose batch is the one that fails waits for the write
	// (its tasks may yet be committed); those after it are refused at once.
	answers := make(chan string, 20)
	refused := ""
	for i := 0; i < 20 && refused == ""; i++ {
		go func() {
			_, stderr, rc := d.Run("submit", "--array", "1-200", "--", "true")
			if rc != 0 {
				answers <- stderr
			}
		}()
		timeout := time.After(time.Second)
	wait:
		for {
			select {
			case a := <-answers:
				if strings.Contains(a, "disk full") {
					refused = a
					break wait
				}
			case <-timeout:
				break wait
			}
		}
	}
	if refused == "" {
		t.Fatalf("no submission was refused with \"disk full\" on a full file system\n%s", testenv.Tail(d.Log(), 3000))
	}
	t.Logf("refused after %s: %s", time.Since(t0).Round(time.Millisecond), strings.TrimSpace(refused))
	if !strings.Contains(refused, filepath.Join(mnt, "run")) {
		t.Errorf("refusal does not name the journal's path: %s", refused)
	}
	if _, stderr, rc := d.Run("status"); rc != 0 {
		t.Fatalf("status while the disk is full: rc %d: %s", rc, stderr)
	}

	os.Remove(filler) // space returns: the daemon resumes by itself
	var after string
	deadline := time.Now().Add(30 * time.Second)
	for after == "" && time.Now().Before(deadline) {
		if out, _, rc := d.Run("submit", "--array", "1-20", "--", "true"); rc == 0 {
			after = strings.TrimSpace(out)
		} else {
			time.Sleep(300 * time.Millisecond)
		}
	}
	if after == "" {
		t.Fatalf("submissions still refused 30 s after space returned\n%s", testenv.Tail(d.Log(), 3000))
	}
	t.Logf("accepted again %s after space returned", time.Since(t0).Round(time.Millisecond))
	for _, job := range []string{before, after} {
		if rc := d.WaitJob(job); rc != 0 {
			t.Fatalf("job %s after space returned: rc %d", job, rc)
		}
		for _, r := range d.Results(job) {
			if r.State != "succeeded" {
				t.Fatalf("job %s task %d: %s %s", job, r.TaskID, r.State, r.Error)
			}
		}
	}

	// Full again: `htexctl stop`, then (after a restart) SIGTERM, must
	// still end the daemon within its stop grace and cancel its block.
	for _, how := range []string{"htexctl stop", "SIGTERM"} {
		blocks := d.Status().Blocks
		filler := fill(t, mnt)
		go d.Run("submit", "--array", "1-200", "--", "true")
		time.Sleep(time.Second)
		start := time.Now()
		if how == "SIGTERM" {
			syscall.Kill(d.Pid(), syscall.SIGTERM)
		} else {
			d.Run("stop", "--no-wait")
		}
		if !d.WaitExit(20 * time.Second) {
			t.Fatalf("daemon still running 20 s after %s on a full disk\n%s", how, testenv.Tail(d.Log(), 3000))
		}
		t.Logf("%s ended the daemon in %s on a full disk", how, time.Since(start).Round(time.Millisecond))
		for _, b := range blocks {
			if pid, err := strconv.Atoi(b.JobID); err == nil && b.State == "running" {
				if alive := waitGroupGone(pid, 10*time.Second); alive {
					t.Errorf("block %d (process group %d) still runs after %s", b.ID, pid, how)
				}
			}
		}
		os.Remove(filler)
		if how == "htexctl stop" {
			d.Start()
		}
	}
	if _, err := os.Stat(filepath.Join(mnt, "run", "connection.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("connection.json left behind after stop: %v", err)
	}
}

// waitGroupGone waits for a process group to end; true if it still exists.
func waitGroupGone(pgid int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}
