package rundir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/htex/htex/internal/testenv"
)

// TestCreateKeepsModeOfExistingDir: a shared folder (1777, others' files)
// is never chmodded; a folder of others' files is refused.
func TestCreateKeepsModeOfExistingDir(t *testing.T) {
	shared := t.TempDir()
	if err := os.Chmod(shared, os.ModePerm|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(shared, "someone-elses.txt"), []byte("x"), 0o644)
	err := Create(shared)
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("Create(non-empty shared dir) = %v, want a refusal", err)
	}
	st, _ := os.Stat(shared)
	if st.Mode()&os.ModePerm != 0o777 || st.Mode()&os.ModeSticky == 0 {
		t.Fatalf("mode of the shared dir changed to %v", st.Mode())
	}

	empty := filepath.Join(t.TempDir(), "empty")
	os.Mkdir(empty, 0o755)
	if err := Create(empty); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(empty); st.Mode().Perm() != 0o755 {
		t.Fatalf("existing empty dir: mode %v, want 0755 kept", st.Mode().Perm())
	}
	if err := Create(empty); err != nil { // now a run directory: accepted again
		t.Fatalf("second Create: %v", err)
	}

	fresh := filepath.Join(t.TempDir(), "a", "b")
	if err := Create(fresh); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(fresh); st.Mode().Perm() != 0o700 {
		t.Fatalf("new dir: mode %v, want 0700", st.Mode().Perm())
	}
}

func TestCreateRefusesOtherUsersDir(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.SkipOrFail(t, "needs root to give a folder to another user")
	}
	d := t.TempDir()
	if err := os.Chown(d, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	err := Create(d)
	if err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Fatalf("Create(other user's dir) = %v, want a refusal naming the owner", err)
	}
}
