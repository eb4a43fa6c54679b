package e2e

import (
	"database/sql"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/htex/htex/internal/testenv"
)

// TestRestartDoesNotAdoptAStranger: a local block whose recorded pid now
// belongs to an unrelated process (a process group leader, as a block's
// leader is) is not adopted as running, and stop leaves that process alone.
func TestRestartDoesNotAdoptAStranger(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, failureConfig)
	st := d.WaitStatus("block 1 running", 30*time.Second, func(s testenv.Status) bool {
		return len(s.Blocks) == 1 && s.Blocks[0].State == "running"
	})
	leader, err := strconv.Atoi(st.Blocks[0].JobID)
	if err != nil {
		t.Fatalf("job id %q", st.Blocks[0].JobID)
	}
	d.Kill9()
	syscall.Kill(-leader, syscall.SIGKILL) // the block dies with the host, say
	waitGroupGone(leader, 10*time.Second)

	stranger := exec.Command("sleep", "300")
	stranger.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := stranger.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stranger.Process.Kill(); stranger.Wait() })
	db, err := sql.Open("sqlite3", filepath.Join(d.RunDir, "htex.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE blocks SET job_id = ? WHERE id = 1`, strconv.Itoa(stranger.Process.Pid)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	d.Start()
	st = d.Status()
	for _, b := range st.Blocks {
		if b.ID == 1 && b.State == "running" {
			t.Errorf("block 1 with the stranger's pid %d adopted as running", stranger.Process.Pid)
		}
	}
	d.Stop()
	time.Sleep(6 * time.Second) // past the provider's SIGTERM-to-SIGKILL delay
	if !procAlive(stranger.Process.Pid) {
		t.Fatal("stop killed an unrelated process whose pid a block once had")
	}
}
