package e2e

import (
	"encoding/json"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/htex/htex/internal/testenv"
	"github.com/htex/htex/pinning"
)

// pinProbe is run by every task of the pinning tests. Once two tasks have
// started (so both slots are in use) it prints the CPU mask of the task
// process itself, of a child and of a grandchild, then the pinning
// variables it sees.
const pinProbe = `touch "$PROBE_DIR/started.$HTEX_TASK_ID"
n=0
while [ "$(ls "$PROBE_DIR" | wc -l)" -lt 2 ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done
while read -r k v; do [ "$k" = Cpus_allowed_list: ] && echo "task $v"; done < /proc/$$/status
grep Cpus_allowed_list /proc/self/status | sed 's/^[^[:space:]]*[[:space:]]*/child /'
sh -c 'grep Cpus_allowed_list /proc/self/status' | sed 's/^[^[:space:]]*[[:space:]]*/grandchild /'
env | grep -E '^(HTEX_WORKER_RANK|OMP_[A-Z_]*|GOMP_[A-Z_]*|KMP_[A-Z_]*)=' | sed 's/^/env /'
`

// probeOutput is what pinProbe printed.
type probeOutput struct {
	masks map[string][]int // task, child, grandchild
	env   map[string]string
}

func parseProbe(t *testing.T, stdout string) probeOutput {
	t.Helper()
	p := probeOutput{masks: map[string][]int{}, env: map[string]string{}}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		kind, rest, _ := strings.Cut(line, " ")
		switch kind {
		case "task", "child", "grandchild":
			cpus, err := pinning.ParseCPUList(strings.TrimSpace(rest))
			if err != nil {
				t.Fatalf("probe line %q: %v", line, err)
			}
			p.masks[kind] = cpus
		case "env":
			k, v, _ := strings.Cut(rest, "=")
			p.env[k] = v
		default:
			t.Fatalf("unexpected probe line %q in\n%s", line, stdout)
		}
	}
	for _, k := range []string{"task", "child", "grandchild"} {
		if p.masks[k] == nil {
			t.Fatalf("probe printed no %s mask:\n%s", k, stdout)
		}
	}
	return p
}

// ownCPUs is the test process's allowed CPUs, which the daemon, its
// blocks and their pools inherit.
func ownCPUs(t *testing.T) []int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			cpus, err := pinning.ParseCPUList(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("Cpus_allowed_list %q: %v", v, err)
			}
			return cpus
		}
	}
	t.Fatal("no Cpus_allowed_list in /proc/self/status")
	return nil
}

// unsetCoresOverride makes the pools detect the real cpuset.
func unsetCoresOverride(t *testing.T) {
	t.Helper()
	for _, k := range []string{"HTEX_CORES", "HTEX_MEMORY_GB"} {
		t.Setenv(k, "") // restored after the test
		os.Unsetenv(k)
	}
}

type planOut struct {
	Slots   int `json:"slots"`
	Workers []struct {
		Rank int               `json:"rank"`
		CPUs []int             `json:"cpus"`
		Env  map[string]string `json:"env"`
	} `json:"workers"`
}

func planFor(t *testing.T, d *testenv.Daemon) planOut {
	t.Helper()
	out, errOut, code := testenv.RunBin(d.Bin, nil, "plan", "--json", "--config", d.Config)
	if code != 0 {
		t.Fatalf("plan: exit %d: %s", code, errOut)
	}
	var p planOut
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("plan --json: %v\n%s", err, out)
	}
	return p
}

// runProbes runs n probe tasks and returns their output by task.
func runProbes(t *testing.T, d *testenv.Daemon, n int) []probeOutput {
	t.Helper()
	dir := t.TempDir()
	job := d.Submit("--env", "PROBE_DIR="+dir, "--array", "1-"+strconv.Itoa(n), "--", "sh", "-c", pinProbe)
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait: exit %d\n%+v", code, d.Results(job))
	}
	var outs []probeOutput
	for _, r := range d.Results(job) {
		outs = append(outs, parseProbe(t, r.Stdout))
	}
	return outs
}

const pinBlockConfig = `
[executor]
max_workers_per_node = 2
cores_per_worker = 1
cpu_affinity = "block"
heartbeat_period = 1
heartbeat_threshold = 5
[provider]
kind = "local"
`

// TestPinningBlockApplied: with cpu_affinity = "block", every task process
// and its descendants run on exactly the CPUs `htexctl plan` gives the
// task's slot, with the slot's OpenMP variables.
func TestPinningBlockApplied(t *testing.T) {
	testenv.Integration(t)
	unsetCoresOverride(t)
	if cpus := ownCPUs(t); len(cpus) < 2 {
		testenv.SkipOrFail(t, "pinning two slots needs 2 CPUs; this process may use %v", cpus)
	}
	d := testenv.StartDaemon(t, pinBlockConfig)
	plan := planFor(t, d)
	if plan.Slots != 2 || len(plan.Workers) != 2 {
		t.Fatalf("plan: %d slots, want 2: %+v", plan.Slots, plan)
	}
	for _, w := range plan.Workers {
		if len(w.CPUs) == 0 {
			t.Fatalf("plan: slot %d has no CPUs with cpu_affinity block", w.Rank)
		}
		if w.Env["OMP_NUM_THREADS"] != strconv.Itoa(len(w.CPUs)) || w.Env["GOMP_CPU_AFFINITY"] != joinInts(w.CPUs) {
			t.Errorf("plan: slot %d env %v does not match its CPUs %v", w.Rank, w.Env, w.CPUs)
		}
	}
	if reflect.DeepEqual(plan.Workers[0].CPUs, plan.Workers[1].CPUs) {
		t.Fatalf("plan: both slots on CPUs %v", plan.Workers[0].CPUs)
	}

	ranks := map[int]bool{}
	for _, p := range runProbes(t, d, 6) {
		rank, err := strconv.Atoi(p.env["HTEX_WORKER_RANK"])
		if err != nil || rank < 0 || rank >= len(plan.Workers) {
			t.Fatalf("task HTEX_WORKER_RANK %q", p.env["HTEX_WORKER_RANK"])
		}
		ranks[rank] = true
		w := plan.Workers[rank]
		for kind, mask := range p.masks {
			if !reflect.DeepEqual(mask, w.CPUs) {
				t.Errorf("slot %d: the %s process runs on CPUs %v, plan says %v", rank, kind, mask, w.CPUs)
			}
		}
		for k, v := range w.Env {
			if p.env[k] != v {
				t.Errorf("slot %d: task sees %s=%q, plan says %q", rank, k, p.env[k], v)
			}
		}
	}
	if len(ranks) != 2 {
		t.Errorf("tasks ran on slots %v, want both", ranks)
	}
}

// TestPinningNoneInherits: with cpu_affinity = "none" tasks keep the CPUs
// the pool was given, and htex sets no OpenMP pinning variables.
func TestPinningNoneInherits(t *testing.T) {
	testenv.Integration(t)
	unsetCoresOverride(t)
	for _, k := range []string{"OMP_NUM_THREADS", "GOMP_CPU_AFFINITY", "KMP_AFFINITY", "OMP_PLACES", "OMP_PROC_BIND"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	own := ownCPUs(t)
	d := testenv.StartDaemon(t, strings.Replace(pinBlockConfig, `cpu_affinity = "block"`, `cpu_affinity = "none"`, 1))
	plan := planFor(t, d)
	for _, w := range plan.Workers {
		if w.CPUs != nil {
			t.Errorf("plan: slot %d pinned to %v with cpu_affinity none", w.Rank, w.CPUs)
		}
	}
	n := 0
	for _, p := range runProbes(t, d, 2) {
		n++
		for kind, mask := range p.masks {
			if !reflect.DeepEqual(mask, own) {
				t.Errorf("the %s process runs on CPUs %v, want the pool's own %v", kind, mask, own)
			}
		}
		for k, v := range p.env {
			if k != "HTEX_WORKER_RANK" {
				t.Errorf("cpu_affinity none: task sees %s=%q", k, v)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d probes", n)
	}
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}
