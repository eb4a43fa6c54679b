package app

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// runRenderApp runs htexctl in-process and returns what render and config
// check printed and the exit status.
func runRenderApp(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	oldOut, oldErr := renderOut, renderErrOut
	renderOut, renderErrOut = &out, &errb
	t.Cleanup(func() { renderOut, renderErrOut = oldOut, oldErr })
	a := New()
	a.Writer, a.ErrWriter = &out, &errb
	a.ExitErrHandler = func(*cli.Context, error) {}
	err := a.Run(append([]string{"htexctl"}, args...))
	if err != nil {
		var ec cli.ExitCoder
		if !errors.As(err, &ec) {
			t.Fatalf("htexctl %v: %v (not an exit error)", args, err)
		}
		code = ec.ExitCode()
		errb.WriteString(ec.Error() + "\n")
	}
	return out.String(), errb.String(), code
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const slurmSite = `
[executor]
label = "dev"
[provider]
kind = "slurm"
nodes_per_block = 2
partition = "debug"
walltime = "00:20:30"
max_blocks = 4
`

func TestRenderSlurm(t *testing.T) {
	t.Setenv("HTEX_RUN_DIR", "")
	dir := t.TempDir()
	cfg := writeFile(t, dir, "site.toml", slurmSite)
	run := filepath.Join(dir, "run")
	out, errOut, code := runRenderApp(t, "render", "--config", cfg, "--block-id", "5", "--run-dir", run)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	exe, _ := os.Executable()
	exe, _ = filepath.Abs(exe)
	for _, want := range []string{
		"#!/bin/bash\n",
		"#SBATCH --job-name=htex-dev-5\n",
		"#SBATCH --output=" + run + "/blocks/5/stdout\n",
		"#SBATCH --time=00:20:30\n",
		"#SBATCH --partition=debug\n",
		"export HTEX_BLOCK_ID=5\n",
		"\n" + exe + " worker --run-dir " + run + " --block-id 5\n",
		"srun --ntasks=2 --ntasks-per-node=1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("render output lacks %q:\n%s", want, out)
		}
	}
}

func TestRenderRunDir(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "site.toml", slurmSite)
	withRunDir := writeFile(t, dir, "rundir.toml", slurmSite+"\n")
	os.WriteFile(withRunDir, []byte(strings.Replace(slurmSite, `label = "dev"`, "label = \"dev\"\nrun_dir = \""+dir+"/fromconfig\"", 1)), 0o644)

	cases := []struct {
		name, env string
		args      []string
		want      string
	}{
		{"default", "", []string{"render", "--config", cfg}, filepath.Join(home, ".htex", "dev")},
		{"env", dir + "/fromenv", []string{"render", "--config", cfg}, dir + "/fromenv"},
		{"flag beats env", dir + "/fromenv", []string{"render", "--config", cfg, "--run-dir", dir + "/fromflag"}, dir + "/fromflag"},
		{"executor.run_dir", "", []string{"render", "--config", withRunDir}, dir + "/fromconfig"},
		{"env beats executor.run_dir", dir + "/fromenv", []string{"render", "--config", withRunDir}, dir + "/fromenv"},
		{"no config: local", "", []string{"render"}, filepath.Join(home, ".htex", "htex")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("HTEX_RUN_DIR", c.env)
			out, errOut, code := runRenderApp(t, c.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(out, "--run-dir "+c.want+" --block-id 0\n") || !strings.Contains(out, "export HTEX_BLOCK_DIR="+c.want+"/blocks/0\n") {
				t.Errorf("want run dir %s in:\n%s", c.want, out)
			}
		})
	}
}

func TestRenderWorkerCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "site.toml", "[executor]\nworker_command = \"apptainer exec img.sif htexctl\"\n[provider]\nkind = \"local\"\n")
	out, errOut, code := runRenderApp(t, "render", "-c", cfg, "--run-dir", "/r", "--block-id", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "\napptainer exec img.sif htexctl worker --run-dir /r --block-id 2\n") {
		t.Errorf("worker_command not used:\n%s", out)
	}
	if strings.Contains(out, "#SBATCH") || strings.Contains(out, "#PBS") {
		t.Errorf("local script has directives:\n%s", out)
	}
}

func TestRenderErrors(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.toml", "[provider]\nkind = \"slurm\"\nwalltime = \"00:00:00\"\n")
	single := writeFile(t, dir, "single.toml", "[provider]\nkind = \"slurm\"\nnodes_per_block = 2\nlauncher = \"single\"\n")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"bad config", []string{"render", "--config", bad}, "must be positive"},
		{"missing config", []string{"render", "--config", filepath.Join(dir, "nope.toml")}, "nope.toml"},
		{"launcher single on 2 nodes", []string{"render", "--config", single, "--run-dir", "/r"}, "nodes_per_block is 2"},
		{"stray argument", []string{"render", bad}, "unexpected argument"},
		{"negative block id", []string{"render", "--block-id", "-1", "--run-dir", "/r"}, "--block-id -1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := runRenderApp(t, c.args...)
			if code != ExitUsage || !strings.Contains(errOut, c.want) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and %q", code, out, errOut, c.want)
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.toml", slurmSite)
	out, errOut, code := runRenderApp(t, "config", "check", good)
	if code != 0 || !strings.HasPrefix(out, "ok: "+good+": label dev, provider slurm (partition debug, 2 node(s) per block, walltime 00:20:30, launcher srun), blocks init 1 min 0 max 4") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	bad := writeFile(t, dir, "bad.toml", "[provider]\nkind = \"slurm\"\nwalltime = \"00:00:00\"\nlauncher = \"jsrun\"\n")
	out, errOut, code = runRenderApp(t, "config", "check", bad)
	if code != ExitUsage || out != "" {
		t.Errorf("bad config: exit %d, stdout %q", code, out)
	}
	for _, want := range []string{bad + ": provider.walltime", bad + `: provider.launcher "jsrun"`, "2 problems"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}

	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"unknown key":      {[]string{"config", "check", writeFile(t, dir, "typo.toml", "[provider]\nnodes_per_blok = 2\n")}, `did you mean "provider.nodes_per_block"`},
		"syntax":           {[]string{"config", "check", writeFile(t, dir, "syntax.toml", "[provider\n")}, "syntax.toml: line "},
		"render problem":   {[]string{"config", "check", writeFile(t, dir, "single.toml", "[provider]\nkind = \"pbs\"\nnodes_per_block = 3\nlauncher = \"single\"\n")}, "nodes_per_block is 3"},
		"missing template": {[]string{"config", "check", writeFile(t, dir, "tmpl.toml", "[provider]\ntemplate = \"my.tmpl\"\n")}, filepath.Join(dir, "my.tmpl")},
		"missing file":     {[]string{"config", "check", filepath.Join(dir, "nope.toml")}, "nope.toml"},
		"no file":          {[]string{"config", "check"}, "want one FILE, got 0"},
		"two files":        {[]string{"config", "check", good, good}, "want one FILE, got 2"},
	} {
		t.Run(name, func(t *testing.T) {
			out, errOut, code := runRenderApp(t, c.args...)
			if code != ExitUsage || out != "" || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and %q", code, out, errOut, c.want)
			}
		})
	}
}

func TestResolveRunDir(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("HTEX_RUN_DIR", "")
	cwd, _ := os.Getwd()
	ctx := func(args ...string) *cli.Context {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		if err := runDirFlag.Apply(fs); err != nil {
			t.Fatal(err)
		}
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return cli.NewContext(cli.NewApp(), fs, nil)
	}
	cases := []struct {
		name  string
		c     *cli.Context
		label string
		want  string
	}{
		{"flag", ctx("--run-dir", "/abs/run"), "x", "/abs/run"},
		{"relative flag", ctx("--run-dir", "rel"), "x", filepath.Join(cwd, "rel")},
		{"tilde", ctx("--run-dir", "~/runs/a"), "x", filepath.Join(home, "runs/a")},
		{"default", ctx(), "mylabel", filepath.Join(home, ".htex", "mylabel")},
		{"nil context", nil, "mylabel", filepath.Join(home, ".htex", "mylabel")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := resolveRunDir(c.c, c.label)
			if err != nil || got != c.want {
				t.Errorf("resolveRunDir = %q, %v; want %q", got, err, c.want)
			}
		})
	}
	t.Setenv("HTEX_RUN_DIR", "/from/env")
	if got, err := resolveRunDir(nil, "x"); err != nil || got != "/from/env" {
		t.Errorf("env: %q, %v", got, err)
	}
	t.Setenv("HTEX_RUN_DIR", "")
	for _, label := range []string{"", "a/b", ".."} {
		if _, err := resolveRunDir(ctx(), label); err == nil {
			t.Errorf("label %q: no error", label)
		}
	}
}
