// Package sites_test checks the site configs of this folder: each passes
// `htexctl config check`, and its batch script and its node plan are
// compared with golden files in testdata/ (go test -update rewrites them).
package sites_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/htex/htex/blockscript"
	"github.com/htex/htex/cmd/htexctl/app"
	"github.com/htex/htex/config"
	"github.com/htex/htex/pinning"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// The block every golden script is rendered for.
const (
	runDir    = "/RUN"
	blockID   = 1
	workerCmd = "htexctl worker --run-dir /RUN --block-id 1"
)

// defaultShape is the node of a site file that documents no plan command
// of its own (local.toml).
var defaultShape = []string{"--cpus", "0-7", "--mem-gb", "32", "--gpus", "0"}

// facilities are the site files that must say which public pages their
// facts come from.
var facilities = []string{"perlmutter-gpu", "perlmutter-cpu", "frontier", "polaris", "aurora"}

// wantSites must all exist: a missing one is a failure, not a skipped test.
var wantSites = []string{"local", "slurm-generic", "pbs-generic", "perlmutter-gpu", "perlmutter-cpu", "frontier", "polaris", "aurora"}

func TestSites(t *testing.T) {
	files, err := filepath.Glob("*.toml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(f, ".toml"))
	}
	for _, w := range wantSites {
		if !slices.Contains(names, w) {
			t.Errorf("sites/%s.toml is missing", w)
		}
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) { checkSite(t, name) })
	}
}

func checkSite(t *testing.T, name string) {
	path := name + ".toml"
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(facilities, name) && !strings.Contains(string(text), "https://docs.") {
		t.Errorf("%s names no documentation page for its facts", path)
	}

	if _, stderr, err := runCLI("config", "check", path); err != nil {
		t.Fatalf("htexctl config check %s: %v", path, err)
	} else if strings.Contains(stderr, "warning:") {
		// e.g. a block that its queue's node range refuses (package queues)
		t.Errorf("htexctl config check %s warns:\n%s", path, stderr)
	}

	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	script, err := blockscript.Render(cfg, blockscript.Params{BlockID: blockID, RunDir: runDir, WorkerCommand: workerCmd})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	golden(t, name+".sh", script)

	shape := planShape(t, name, string(text))
	args := append([]string{"plan", "--config", path}, shape...)
	table, stderr, err := runCLI(args...)
	if err != nil {
		t.Fatalf("htexctl %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	golden(t, name+".plan", table)
	js, stderr, err := runCLI(append(args, "--json")...)
	if err != nil {
		t.Fatalf("htexctl %s --json: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	golden(t, name+".plan.json", js)

	checkLayout(t, cfg, js)
}

// checkLayout lays the node out again with the config's PinningOptions and
// compares with what the plan command printed, then checks what every site
// must give: one slot per accelerator entry on GPU sites, and no CPU in two
// slots.
func checkLayout(t *testing.T, cfg *config.Config, js string) {
	t.Helper()
	var p struct {
		Slots int `json:"slots"`
		Node  struct {
			CPUs     []int   `json:"cpus"`
			MemoryGB float64 `json:"memory_gb"`
			GPUs     int     `json:"gpus"`
		} `json:"node"`
		Workers []struct {
			CPUs        []int  `json:"cpus"`
			Accelerator string `json:"accelerator"`
		} `json:"workers"`
	}
	if err := json.Unmarshal([]byte(js), &p); err != nil {
		t.Fatalf("plan --json: %v\n%s", err, js)
	}
	opts := cfg.Executor.PinningOptions()
	opts.GPUs = p.Node.GPUs
	l, err := pinning.Plan(pinning.Node{CPUs: p.Node.CPUs, MemoryGB: p.Node.MemoryGB}, opts)
	if err != nil {
		t.Fatalf("pinning.Plan with the config's options: %v", err)
	}
	if len(l.Slots) != p.Slots || len(p.Workers) != p.Slots {
		t.Fatalf("pinning.Plan gives %d slots, plan printed %d (%d workers)", len(l.Slots), p.Slots, len(p.Workers))
	}
	owner := map[int]int{}
	for i, s := range l.Slots {
		w := p.Workers[i]
		if !slices.Equal(s.CPUs, w.CPUs) || s.Accelerator != w.Accelerator {
			t.Errorf("slot %d: pinning.Plan gives CPUs %v accelerator %q, plan printed %v %q", i, s.CPUs, s.Accelerator, w.CPUs, w.Accelerator)
		}
		for _, c := range s.CPUs {
			if o, ok := owner[c]; ok {
				t.Errorf("CPU %d is in slots %d and %d", c, o, i)
			}
			owner[c] = i
		}
	}
	if n := len(cfg.Executor.AvailableAccelerators); n > 0 && p.Slots != n {
		t.Errorf("%d slots for %d accelerator entries: a GPU site should use every entry", p.Slots, n)
	}
}

// planShape reads the node shape from the site's own comment line
// "htexctl plan --config sites/<name>.toml FLAGS", so that the command the
// file documents is the one tested.
func planShape(t *testing.T, name, text string) []string {
	t.Helper()
	marker := "htexctl plan --config sites/" + name + ".toml"
	for line := range strings.Lines(text) {
		_, rest, ok := strings.Cut(line, marker)
		if !ok || !strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		// Only a line that gives the node shape (flags) counts; a mention
		// in prose ("run `htexctl plan --config sites/x.toml`") does not.
		if shape := strings.Fields(rest); len(shape) > 0 && strings.HasPrefix(shape[0], "--") {
			return shape
		}
	}
	return defaultShape
}

// runCLI runs htexctl in this process and returns what it wrote.
func runCLI(args ...string) (stdout, stderr string, err error) {
	a := app.New()
	var out, errb bytes.Buffer
	a.Writer, a.ErrWriter = &out, &errb
	a.ExitErrHandler = func(*cli.Context, error) {} // return the error, do not exit
	err = a.Run(append([]string{"htexctl"}, args...))
	return out.String(), errb.String(), err
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./sites -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test ./sites -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
