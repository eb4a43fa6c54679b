package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BuildPBSEmulator builds the PBS emulator of testdata/pbs-emulator into a
// new temporary directory, links it there as qsub, qstat, qdel, qrls and
// mpiexec, and returns the directory (to put first on PATH).
func BuildPBSEmulator(t testing.TB) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = "/usr/local/go/bin/go" // where install-deps.sh expects Go

	}
	bin := t.TempDir()
	exe := filepath.Join(bin, "pbs-emulator")
	build := exec.Command(goCmd, "build", "-buildvcs=false", "-o", exe, ".")
	build.Dir = filepath.Join(RepoRoot(), "testdata", "pbs-emulator")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the PBS emulator: %v\n%s", err, out)
	}
	for _, name := range []string{"qsub", "qstat", "qdel", "qrls", "mpiexec"} {
		if err := os.Symlink(exe, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	return bin
}
