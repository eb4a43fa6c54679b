package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
	"github.com/htex/htex/journal"
)

// TestSecondDaemonRefused: a second `serve` on a run directory that a
// daemon serves, started in another PID namespace (as from a container),
// is refused with the holder named, and leaves the first daemon's tasks,
// connection file and journal alone.
func TestSecondDaemonRefused(t *testing.T) {
	testenv.Integration(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		testenv.SkipOrFail(t, "unshare (util-linux) not found")
	}
	d := testenv.StartDaemon(t, failureConfig)
	marks := t.TempDir()
	job := d.Submit("--array", "1-4", "--shell", "--", "echo start >> "+marks+"/{}; sleep 3; echo end >> "+marks+"/{}")
	connBefore, _ := os.ReadFile(filepath.Join(d.RunDir, "connection.json"))

	cmd := exec.Command("unshare", "-p", "-f", "--mount-proc", d.Bin, "serve", "--config", d.Config, "--run-dir", d.RunDir)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("second daemon (other PID namespace) still running after 30 s: it was not refused\n%s", out)
	}
	if err == nil {
		t.Fatalf("second daemon exited 0\n%s", out)
	}
	if !strings.Contains(string(out), "held by another daemon") || !strings.Contains(string(out), "pid "+strconv.Itoa(d.Pid())) {
		t.Fatalf("refusal does not name the holder (pid %d):\n%s", d.Pid(), out)
	}
	if connAfter, _ := os.ReadFile(filepath.Join(d.RunDir, "connection.json")); string(connAfter) != string(connBefore) {
		t.Fatal("the refused daemon rewrote connection.json")
	}
	if rc := d.WaitJob(job); rc != 0 {
		t.Fatalf("first daemon's job: rc %d", rc)
	}
	for i := 1; i <= 4; i++ {
		b, _ := os.ReadFile(filepath.Join(marks, strconv.Itoa(i)))
		if strings.Count(string(b), "start") != 1 {
			t.Errorf("task %d ran %d times", i, strings.Count(string(b), "start"))
		}
	}
}

// TestStalePidFileDoesNotBlock: a pid file (and a lease of this host)
// naming a live process that is not a daemon — with "serve" in its command
// line — does not keep a new daemon out: the kernel lock is free.
func TestStalePidFileDoesNotBlock(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, failureConfig)
	d.Kill9()
	impostor := exec.Command("sh", "-c", "sleep 300 # serve")
	impostor.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its sleep goes with it
	if err := impostor.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-impostor.Process.Pid, syscall.SIGKILL); impostor.Wait() })
	os.WriteFile(filepath.Join(d.RunDir, "daemon.pid"), []byte(strconv.Itoa(impostor.Process.Pid)+"\n"), 0o600)
	d.Start() // fails the test if the new daemon does not come up
	job := d.Submit("--", "true")
	if rc := d.WaitJob(job); rc != 0 {
		t.Fatalf("job on the restarted daemon: rc %d", rc)
	}
}

// TestOtherHostLeaseRefused: a fresh lease of a daemon on another host
// (whose kernel lock this host cannot see) keeps `serve` out, with the
// holder named; once the lease has expired, serve takes over.
func TestOtherHostLeaseRefused(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, failureConfig)
	d.Stop()
	jr, err := journal.Open(filepath.Join(d.RunDir, "htex.db"))
	if err != nil {
		t.Fatal(err)
	}
	setLease := func(beat time.Time) {
		raw, _ := jr.Meta("lease")
		l := fmt.Sprintf(`{"host":"login-elsewhere","boot_id":"other-boot","pid":4711,"token":"t-%d","since":"2026-01-01T00:00:00Z","heartbeat":%q}`,
			beat.UnixNano(), beat.UTC().Format(time.RFC3339Nano))
		if _, ok, err := jr.SwapMeta("lease", raw, l); err != nil || !ok {
			t.Fatalf("write lease: %v %v", ok, err)
		}
	}
	setLease(time.Now())
	out, err := exec.Command(d.Bin, "serve", "--config", d.Config, "--run-dir", d.RunDir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "login-elsewhere") || !strings.Contains(string(out), "pid 4711") {
		t.Fatalf("serve with another host's fresh lease: err %v\n%s", err, out)
	}
	setLease(time.Now().Add(-2 * time.Minute)) // expired
	jr.Close()
	d.Start()
	if rc := d.WaitJob(d.Submit("--", "true")); rc != 0 {
		t.Fatalf("job after taking over an expired lease: rc %d", rc)
	}
}

// TestLostLeaseStops: a daemon whose lease another daemon has taken (here
// written by hand, as a daemon of another host would after the lease
// expired) stops at its next renewal, and leaves the connection file to
// the new owner.
func TestLostLeaseStops(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, failureConfig)
	jr, err := journal.Open(filepath.Join(d.RunDir, "htex.db"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := jr.Meta("lease")
	now := time.Now().UTC().Format(time.RFC3339Nano)
	other := `{"host":"login-elsewhere","boot_id":"b","pid":4711,"token":"theirs","since":"` + now + `","heartbeat":"` + now + `"}`
	if _, ok, err := jr.SwapMeta("lease", raw, other); err != nil || !ok {
		t.Fatalf("take the lease: %v %v", ok, err)
	}
	jr.Close()
	if !d.WaitExit(30 * time.Second) {
		t.Fatalf("daemon still running 30 s after its lease was taken\n%s", testenv.Tail(d.Log(), 2000))
	}
	if !strings.Contains(d.Log(), "lost the run directory") || !strings.Contains(d.Log(), "login-elsewhere") {
		t.Errorf("log does not say who took the run directory:\n%s", testenv.Tail(d.Log(), 2000))
	}
	if _, err := os.Stat(filepath.Join(d.RunDir, "connection.json")); err != nil {
		t.Errorf("connection.json removed by the daemon that lost the run directory: %v", err)
	}
}
