package launcher

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/htex/htex/internal/testenv"
)

// TestPbsdshHydraLauncher: the pools of a pbsdsh block, and so their tasks,
// get HYDRA_LAUNCHER=rsh and HYDRA_LAUNCHER_EXEC=<block dir>/hydra-rsh when
// pbs_tmrsh sits beside pbsdsh; hydra-rsh hands the host and the command
// words, joined for a shell as rsh does, to pbs_tmrsh. A hydra launcher
// chosen in worker_init is left alone; without pbs_tmrsh nothing is set.
func TestPbsdshHydraLauncher(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		testenv.SkipOrFail(t, "bash is not installed")
	}
	dir := t.TempDir()
	nodefile := filepath.Join(dir, "nodefile")
	if err := os.WriteFile(nodefile, []byte("n1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The pool runs what hydra's rsh launcher runs: <exec> <host> <words>,
	// the proxy's path quoted for a remote shell.
	pool := `echo "launcher=$HYDRA_LAUNCHER exec=$HYDRA_LAUNCHER_EXEC"
[ -z "$HYDRA_LAUNCHER_EXEC" ] || "$HYDRA_LAUNCHER_EXEC" n1 '"/usr/bin/printf"' '%s,' a 'b  c'`
	line, err := Line("pbsdsh", pool, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, tmrsh bool, init string) (string, string) {
		t.Helper()
		bin := filepath.Join(t.TempDir(), "bin")
		block := t.TempDir()
		if err := os.Mkdir(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		files := map[string]string{"pbsdsh": "#!/bin/bash\nshift 3\nexec \"$@\"\n"} // drop -n <i> --
		if tmrsh {
			// What pbs_tmrsh does with its argv: tm_spawn(argv[2:]) on host argv[1].
			files["pbs_tmrsh"] = "#!/bin/bash\necho \"tmrsh host=$1\"\nshift\nexec \"$@\"\n"
		}
		for name, text := range files {
			if err := os.WriteFile(filepath.Join(bin, name), []byte(text), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command("/bin/bash", "-c", "export HTEX_BLOCK_DIR="+block+"\n"+init+"\n"+line)
		cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "PBS_NODEFILE=" + nodefile}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return strings.TrimSpace(string(out)), block
	}
	t.Run("pbs_tmrsh beside pbsdsh", func(t *testing.T) {
		out, block := run(t, true, "")
		want := "launcher=rsh exec=" + block + "/hydra-rsh\ntmrsh host=n1\na,b,c,"
		if out != want {
			t.Errorf("got\n%s\nwant\n%s", out, want)
		}
	})
	t.Run("worker_init chose a launcher", func(t *testing.T) {
		if out, _ := run(t, true, "export HYDRA_LAUNCHER=ssh"); out != "launcher=ssh exec=" {
			t.Errorf("got %q, want HYDRA_LAUNCHER=ssh kept and no HYDRA_LAUNCHER_EXEC", out)
		}
	})
	t.Run("no pbs_tmrsh", func(t *testing.T) {
		if out, _ := run(t, false, ""); out != "launcher= exec=" {
			t.Errorf("got %q, want no hydra launcher set", out)
		}
	})
}
