package local

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/htex/htex/providers"
)

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := len(b)
	for i > 0 && b[i-1] != ')' {
		i--
	}
	return len(b) > i+1 && b[i+1] != 'Z'
}

// TestRecycledPidIsNotAdopted: a block whose recorded pid now belongs to
// an unrelated process is not reported running and is never signalled.
func TestRecycledPidIsNotAdopted(t *testing.T) {
	stranger := exec.Command("sleep", "300")
	if err := stranger.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stranger.Process.Kill(); stranger.Wait() })
	pid := stranger.Process.Pid
	id := strconv.Itoa(pid)

	real, err := identOf(pid)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"an earlier process with the same pid": ident{Pid: pid, StartTime: real.StartTime - 1, BootID: real.BootID}.String(),
		"the same pid in an earlier boot":      ident{Pid: pid, StartTime: real.StartTime, BootID: "0000-earlier-boot"}.String(),
		"no identity recorded (older block)":   "",
	}
	for name, rec := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if rec != "" {
				os.WriteFile(filepath.Join(dir, identFile), []byte(rec), 0o600)
			}
			l := New()
			l.Adopt(id, dir)
			st, err := l.Status(context.Background(), []string{id})
			if err != nil {
				t.Fatal(err)
			}
			if st[id].State == providers.Running {
				t.Fatalf("a stranger's pid was adopted as a running block: %+v", st[id])
			}
			if err := l.Cancel(context.Background(), []string{id}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			if !alive(pid) {
				t.Fatal("Cancel signalled the unrelated process")
			}
		})
	}
}

// TestOwnBlockIsRunningAndCancelled: the identity written at submit lets
// the provider (or a restarted daemon's provider) find and cancel it.
func TestOwnBlockIsRunningAndCancelled(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "block.sh")
	os.WriteFile(script, []byte("sleep 300\n"), 0o700)
	l := New()
	id, err := l.Submit(context.Background(), providers.Submission{Dir: dir, ScriptPath: script})
	if err != nil {
		t.Fatal(err)
	}
	later := New() // a restarted daemon
	later.Adopt(id, dir)
	st, _ := later.Status(context.Background(), []string{id})
	if st[id].State != providers.Running {
		t.Fatalf("own block: %+v, want running", st[id])
	}
	if err := later.Cancel(context.Background(), []string{id}); err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(id)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && syscall.Kill(-pid, 0) == nil {
		time.Sleep(50 * time.Millisecond)
	}
	if syscall.Kill(-pid, 0) == nil {
		t.Fatal("own block's process group still alive after Cancel")
	}
	l.Wait()
}
