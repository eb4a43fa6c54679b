package blockscript

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/htex/htex/config"

	"github.com/htex/htex/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Site configs with every option of each kind set, rendered for every
// launcher.
const (
	slurmTOML = `
[executor]
label = "frontier"
[provider]
kind = "slurm"
nodes_per_block = 2
walltime = "01:30:15"
account = "abc123"
partition = "batch"
qos = "normal"
constraint = "gpu&a100"
exclusive = true
cores_per_node = 64
mem_per_node = 256
clusters = "c1"
scheduler_options = "#SBATCH --gpus-per-node=4\n#SBATCH --reservation=resv"
worker_init = "module load rocm\nsource /opt/venv/bin/activate"
`
	pbsTOML = `
[executor]
label = "polaris"
[provider]
kind = "pbs"
nodes_per_block = 2
walltime = "30:00:00"
account = "myproj"
queue = "prod"
select_options = "ngpus=4"
cpus_per_node = 64
place = "scatter"
scheduler_options = "#PBS -l filesystems=home:eagle"
worker_init = "module use /soft/modulefiles\nmodule load conda"
`
	localTOML = `
[executor]
label = "laptop"
[provider]
kind = "local"
nodes_per_block = 2
walltime = "00:10:00"
scheduler_options = "# nothing to schedule"
worker_init = "export OMP_NUM_THREADS=1"
`
)

var launcherOptions = map[string]string{
	"single":          "",
	"simple":          "",
	"srun":            "--mpi=none",
	"mpiexec":         "--cpu-bind depth --depth 64",
	"mpiexec-openmpi": "--bind-to none",
	"aprun":           "-cc none",
}

var params = Params{
	BlockID:       3,
	RunDir:        "/lus/scratch/me/run1",
	BlockDir:      "/lus/scratch/me/run1/blocks/3",
	WorkerCommand: "/usr/local/bin/htexctl worker --run-dir /lus/scratch/me/run1 --block-id 3",
}

func parse(t *testing.T, text string, edit func(*config.Config)) *config.Config {
	t.Helper()
	cfg, err := config.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(cfg)
	}
	return cfg
}

func TestRenderGolden(t *testing.T) {
	for _, kind := range []struct{ name, toml string }{{"slurm", slurmTOML}, {"pbs", pbsTOML}, {"local", localTOML}} {
		for _, l := range []string{"single", "simple", "srun", "mpiexec", "mpiexec-openmpi", "aprun"} {
			name := kind.name + "-" + l
			t.Run(name, func(t *testing.T) {
				cfg := parse(t, kind.toml, func(c *config.Config) {
					c.Provider.Launcher = l
					c.Provider.LauncherOptions = launcherOptions[l]
					if l == "single" {
						c.Provider.NodesPerBlock = 1
					}
				})
				got, err := Render(cfg, params)
				if err != nil {
					t.Fatal(err)
				}
				checkGolden(t, name, got)
				checkSyntax(t, got)
			})
		}
	}
}

// TestRenderVariants covers options that change the directives.
func TestRenderVariants(t *testing.T) {
	cases := []struct {
		name, toml string
		edit       func(*config.Config)
	}{
		{"slurm-minimal", "[provider]\nkind = \"slurm\"\nexclusive = false\n", nil},
		{"slurm-days", "[provider]\nkind = \"slurm\"\nwalltime = \"2-03:04:05\"\n", nil},
		{"slurm-seconds", "[provider]\nkind = \"slurm\"\nwalltime = \"00:00:30\"\n", nil},
		{"pbs-minimal", "[provider]\nkind = \"pbs\"\n", nil},
		{"pbs-select-colon", "[provider]\nkind = \"pbs\"\ncpus_per_node = 32\nselect_options = \":ngpus=4:mem=64gb\"\n", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Render(parse(t, c.toml, c.edit), params)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, c.name, got)
			checkSyntax(t, got)
		})
	}
}

func TestRenderDirectives(t *testing.T) {
	cases := []struct {
		name, toml string
		want, not  []string
	}{
		{"slurm seconds kept", "[provider]\nkind = \"slurm\"\nwalltime = \"00:00:30\"\n",
			[]string{"#SBATCH --time=00:00:30\n", "HTEX_BLOCK_END=$(( $(date +%s) + 30 ))"}, nil},
		{"slurm not exclusive", "[provider]\nkind = \"slurm\"\nexclusive = false\n",
			nil, []string{"--exclusive", "--mem", "--cpus-per-task", "--account", "--clusters", "HTEX_CORES"}},
		{"slurm exclusive by default", "[provider]\nkind = \"slurm\"\n", []string{"#SBATCH --exclusive\n"}, nil},
		{"pbs no ncpus", "[provider]\nkind = \"pbs\"\nnodes_per_block = 4\nselect_options = \"ngpus=4\"\n",
			[]string{"#PBS -l select=4:ngpus=4\n", "#PBS -l place=scatter\n"}, []string{"ncpus"}},
		{"pbs long walltime", "[provider]\nkind = \"pbs\"\nwalltime = \"1-12:00:00\"\n", []string{"#PBS -l walltime=36:00:00\n"}, nil},
		{"local has no directives", "[provider]\nkind = \"local\"\n", nil, []string{"#SBATCH", "#PBS"}},
		{"slurm asks for the node's gpus", "[executor]\ngpus_per_node = 8\n[provider]\nkind = \"slurm\"\n",
			[]string{"#SBATCH --exclusive\n", "#SBATCH --gpus-per-node=8\n"}, nil},
		{"slurm shared node asks for its gpus too", "[executor]\ngpus_per_node = 2\n[provider]\nkind = \"slurm\"\nexclusive = false\n",
			[]string{"#SBATCH --gpus-per-node=2\n"}, []string{"--exclusive"}},
		{"slurm gpus unknown: no request", "[executor]\navailable_accelerators = 4\n[provider]\nkind = \"slurm\"\n",
			nil, []string{"--gpus"}},
		{"slurm scheduler_options gpu request wins", "[executor]\ngpus_per_node = 4\n[provider]\nkind = \"slurm\"\nscheduler_options = \"#SBATCH --gres=gpu:a100:4\"\n",
			[]string{"#SBATCH --gres=gpu:a100:4\n"}, []string{"--gpus-per-node"}},
		{"pbs never gets a slurm gpu line", "[executor]\ngpus_per_node = 4\n[provider]\nkind = \"pbs\"\n", nil, []string{"--gpus"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Render(parse(t, c.toml, nil), params)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("script lacks %q:\n%s", w, got)
				}
			}
			for _, n := range c.not {
				if strings.Contains(got, n) {
					t.Errorf("script has %q:\n%s", n, got)
				}
			}
		})
	}
}

func TestGPURequest(t *testing.T) {
	cases := []struct {
		name    string
		gpus    int
		options string
		want    int
	}{
		{"no gpus", 0, "", 0},
		{"gpus", 4, "", 4},
		{"other options", 4, "#SBATCH --reservation=r\n#SBATCH --gpu-bind=closest", 4},
		{"gpus-per-node", 4, "#SBATCH --gpus-per-node=2", 0},
		{"gpus-per-task", 4, "#SBATCH --gpus-per-task=1", 0},
		{"gpus total", 4, "#SBATCH --gpus 8", 0},
		{"short -G", 4, "#SBATCH -G 8", 0},
		{"gres gpu", 4, "#SBATCH --gres=gpu:4", 0},
		{"gres list with gpu", 4, "#SBATCH --gres=craynetwork:1,gpu:a100:4", 0},
		{"gres without gpu", 4, "#SBATCH --gres=craynetwork:1", 4},
		{"gpu-bind is no request", 4, "#SBATCH --gpu-bind=closest", 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := gpuRequest(c.gpus, c.options); got != c.want {
				t.Errorf("gpuRequest(%d, %q) = %d, want %d", c.gpus, c.options, got, c.want)
			}
		})
	}
}

// TestRenderOrder checks that worker_init comes after the HTEX_* exports and
// before the launcher, and scheduler_options right after the directives.
func TestRenderOrder(t *testing.T) {
	got, err := Render(parse(t, slurmTOML, nil), params)
	if err != nil {
		t.Fatal(err)
	}
	order := []string{"#!/bin/bash\n", "#SBATCH --job-name=htex-frontier-3\n", "#SBATCH --clusters=c1\n#SBATCH --gpus-per-node=4\n",
		"export HTEX_BLOCK_ID=3\n", "export HTEX_BLOCK_END=", "module load rocm\n", "srun --ntasks=2"}
	at := -1
	for _, o := range order {
		i := strings.Index(got, o)
		if i <= at {
			t.Fatalf("%q missing or out of order in:\n%s", o, got)
		}
		at = i
	}
	if regexp.MustCompile(`(?m)^\s*set -e`).MatchString(got) {
		t.Error("script uses set -e")
	}
}

func TestRenderErrors(t *testing.T) {
	cases := []struct {
		name string
		edit func(*config.Config, *Params)
		want string
	}{
		{"zero walltime", func(c *config.Config, _ *Params) { c.Provider.Walltime = "00:00:00" }, "must be positive"},
		{"bad walltime", func(c *config.Config, _ *Params) { c.Provider.Walltime = "1h" }, "want HH:MM:SS"},
		{"unknown launcher", func(c *config.Config, _ *Params) { c.Provider.Launcher = "jsrun" }, `unknown launcher "jsrun"`},
		{"single on two nodes", func(c *config.Config, _ *Params) { c.Provider.Launcher = "single" }, "nodes_per_block is 2"},
		{"unknown kind", func(c *config.Config, _ *Params) { c.Provider.Kind = "lsf" }, `provider.kind "lsf"`},
		{"empty worker command", func(_ *config.Config, p *Params) { p.WorkerCommand = "" }, "empty worker command"},
		{"no run dir", func(_ *config.Config, p *Params) { p.RunDir, p.BlockDir = "", "" }, "no run directory"},
		{"space in block dir", func(_ *config.Config, p *Params) { p.BlockDir = "/my runs/3" }, "whitespace"},
		{"percent in block dir", func(_ *config.Config, p *Params) { p.BlockDir = "/runs/100%/3" }, "file name pattern"},
		{"newline in partition", func(c *config.Config, _ *Params) { c.Provider.Partition = "a\n#SBATCH --x" }, "provider.partition"},
		{"missing template file", func(c *config.Config, _ *Params) { c.Provider.Template = "/nonexistent/x.tmpl" }, "provider.template"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := parse(t, slurmTOML, nil)
			p := params
			c.edit(cfg, &p)
			_, err := Render(cfg, p)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Render error = %v, want one containing %q", err, c.want)
			}
		})
	}
	if _, err := Render(nil, params); err == nil {
		t.Error("Render(nil) succeeded")
	}
}

func TestRenderOwnTemplate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tmpl")
	os.WriteFile(good, []byte("#!/bin/bash\n#SITE --nodes={{.Nodes}} --acct={{.Provider.Account}} --dir={{shq .BlockDir}}\n{{.Launcher}}"), 0o644)
	cfg := parse(t, slurmTOML, func(c *config.Config) { c.Provider.Template = good })
	got, err := Render(cfg, params)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "#!/bin/bash\n#SITE --nodes=2 --acct=abc123 --dir=/lus/scratch/me/run1/blocks/3\n") {
		t.Errorf("own template rendered as:\n%s", got)
	}
	for name, text := range map[string]string{
		"missing field": "{{.NoSuchField}}",
		"bad syntax":    "{{.Nodes",
	} {
		bad := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".tmpl")
		os.WriteFile(bad, []byte(text), 0o644)
		cfg.Provider.Template = bad
		if _, err := Render(cfg, params); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%s: error %v, want one naming %s", name, err, bad)
		}
	}
}

// TestRenderDefaultBlockDir checks that BlockDir defaults to
// <run-dir>/blocks/<id>.
func TestRenderDefaultBlockDir(t *testing.T) {
	p := params
	p.BlockDir = ""
	got, err := Render(parse(t, "[provider]\nkind = \"slurm\"\n", nil), p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "#SBATCH --output=/lus/scratch/me/run1/blocks/3/stdout\n") {
		t.Errorf("no default block dir in:\n%s", got)
	}
}

// TestLocalScriptRuns runs a rendered local script: the worker command sees
// the HTEX_* variables, worker_init runs first, and the script exits with the
// worker's status.
func TestLocalScriptRuns(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		testenv.SkipOrFail(t, "bash is not installed")
	}
	run := t.TempDir()
	blockDir := filepath.Join(run, "blocks", "9")
	if err := os.MkdirAll(blockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, "[provider]\nkind = \"local\"\nwalltime = \"00:02:00\"\nworker_init = \"export GREETING=hello\"\n", nil)
	script, err := Render(cfg, Params{BlockID: 9, RunDir: run, BlockDir: blockDir,
		WorkerCommand: `echo "$GREETING block=$HTEX_BLOCK_ID end=$HTEX_BLOCK_END pwd=$PWD"; exit 7`})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Unix()
	out, err := exec.Command("bash", "-c", script).Output()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 7 {
		t.Fatalf("script ended with %v, want exit status 7; output %q", err, out)
	}
	var end int64
	var pwd string
	if _, err := fmt.Sscanf(string(out), "hello block=9 end=%d pwd=%s", &end, &pwd); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if end < before+120 || end > time.Now().Unix()+120 {
		t.Errorf("HTEX_BLOCK_END=%d, want about %d", end, before+120)
	}
	if pwd != blockDir {
		t.Errorf("ran in %s, want the block dir %s", pwd, blockDir)
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":                 "''",
		"/usr/bin/htexctl": "/usr/bin/htexctl",
		"/my runs/x":       "'/my runs/x'",
		"it's":             `'it'\''s'`,
		"$HOME":            "'$HOME'",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
	if got, want := WorkerCommand("/opt/htexctl", "/my run", 12), "/opt/htexctl worker --run-dir '/my run' --block-id 12"; got != want {
		t.Errorf("WorkerCommand = %q, want %q", got, want)
	}
	if got, want := JobName("my site/α", 4), "htex-my_site__-4"; got != want {
		t.Errorf("JobName = %q, want %q", got, want)
	}
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
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

// checkSyntax runs bash -n on a script.
func checkSyntax(t *testing.T, script string) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		return
	}
	if out, err := exec.Command("bash", "-n", "-c", script).CombinedOutput(); err != nil {
		t.Errorf("bash -n: %v\n%s", err, out)
	}
}
