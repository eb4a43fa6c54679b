package launcher

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/htex/htex/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const workerCmd = `/usr/local/bin/htexctl worker --run-dir /scratch/run --block-id 7 --node "$SLURMD_NODENAME"`

func TestLineGolden(t *testing.T) {
	cases := []struct {
		name, kind string
		nodes      int
		options    string
	}{
		{"single", "single", 1, ""},
		{"simple", "simple", 4, ""},
		{"srun", "srun", 4, "--mpi=none"},
		{"mpiexec", "mpiexec", 4, "--cpu-bind depth --depth 64"},
		{"mpiexec-openmpi", "mpiexec-openmpi", 4, "--bind-to none"},
		{"aprun", "aprun", 4, "-cc none"},
		{"srun-no-options", "srun", 2, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Line(c.kind, workerCmd, c.nodes, c.options)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", c.name+".golden"), got)
		})
	}
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestLineErrors(t *testing.T) {
	cases := []struct {
		name, kind, cmd string
		nodes           int
		options         string
		want            string
	}{
		{"unknown kind", "jsrun", "x", 1, "", `unknown launcher "jsrun"`},
		{"empty kind", "", "x", 1, "", `unknown launcher ""`},
		{"empty command", "srun", "  ", 1, "", "empty worker command"},
		{"zero nodes", "srun", "x", 0, "", "nodes 0"},
		{"single on two nodes", "single", "x", 2, "", "nodes_per_block is 2"},
		{"heredoc end in command", "srun", "x\n" + heredocEnd + "\ny", 2, "", "ends the heredoc"},
		{"multi-line options", "srun", "x", 2, "-a\n-b", "must be one line"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Line(c.kind, c.cmd, c.nodes, c.options)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Line error = %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestLineExpandsPerNode runs the launcher text under bash with fake srun,
// mpiexec and aprun programs that run the command file once per "node", each
// with its own SLURMD_NODENAME: the command must see each node's value.
func TestLineExpandsPerNode(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		testenv.SkipOrFail(t, "bash is not installed")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	// The fake launcher records its arguments and runs "<last arg>" (the
	// command file) with /bin/bash (the argument before it) on two nodes.
	fake := "#!/bin/bash\n" +
		"echo \"$(basename \"$0\") $*\" >> \"$HTEX_BLOCK_DIR/argv\"\n" +
		"for n in nodeA nodeB; do SLURMD_NODENAME=$n \"${@: -2:1}\" \"${@: -1}\"; done\n"
	for _, name := range []string{"srun", "mpiexec", "aprun"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(fake), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, kind := range []string{"srun", "mpiexec", "mpiexec-openmpi", "aprun"} {
		t.Run(kind, func(t *testing.T) {
			blockDir := t.TempDir()
			line, err := Line(kind, `echo "pool on $SLURMD_NODENAME"`, 2, "--opt")
			if err != nil {
				t.Fatal(err)
			}
			script := "SLURMD_NODENAME=head\nexport HTEX_BLOCK_DIR=" + blockDir + "\n" + line
			cmd := exec.Command("bash", "-c", script)
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "PBS_NODEFILE=")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if got, want := string(out), "pool on nodeA\npool on nodeB\n"; got != want {
				t.Errorf("output %q, want %q", got, want)
			}
			argv, err := os.ReadFile(filepath.Join(blockDir, "argv"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.ReplaceAll(string(argv), "=", " "), " 2 ") || !strings.Contains(string(argv), "--opt /bin/bash "+blockDir+"/worker.sh") {
				t.Errorf("launcher argv %q: want the node count and the options before /bin/bash <file>", argv)
			}
		})
	}
}

// TestMpiexecHostfile checks that mpiexec gets --hostfile only when
// PBS_NODEFILE is set.
func TestMpiexecHostfile(t *testing.T) {
	line, err := Line("mpiexec", "true", 2, "")
	if err != nil {
		t.Fatal(err)
	}
	last := strings.TrimSpace(line[strings.LastIndex(strings.TrimSpace(line), "\n")+1:])
	for _, c := range []struct{ env, want string }{
		{"", "mpiexec|-n|2|--ppn|1|/bin/bash|./worker.sh|"},
		{"/var/spool/pbs/aux/1.pbs", "mpiexec|-n|2|--ppn|1|--hostfile|/var/spool/pbs/aux/1.pbs|/bin/bash|./worker.sh|"},
	} {
		script := "PBS_NODEFILE=" + c.env + "\nHTEX_BLOCK_DIR=.\nprintf '%s|' " + last
		out, err := exec.Command("bash", "-c", script).Output()
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != c.want {
			t.Errorf("PBS_NODEFILE=%q: argv %q, want %q", c.env, out, c.want)
		}
	}
}
