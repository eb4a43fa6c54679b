package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/htex/htex/internal/testenv"
	"github.com/htex/htex/pinning"
)

// Tasks of a size (submit --cores/--gpus/--mem, docs/task-sizes.md) on
// the local provider. The pools see two CPUs (HTEX_CORES=2: the first two
// of the allowed set), cut into two slots of one CPU each by the pinning
// tests' pinBlockConfig.

// sizeProbe prints when the task started and ended (ns), its CPU mask and
// OMP_NUM_THREADS, holding its CPUs for a moment in between.
const sizeProbe = `s=$(date +%s%N)
while read -r k v; do [ "$k" = Cpus_allowed_list: ] && echo "cpus $v"; done < /proc/$$/status
echo "omp ${OMP_NUM_THREADS:-}"
echo "places ${OMP_PLACES:-}"
sleep ${HOLD:-0.3}
echo "start $s"
echo "end $(date +%s%N)"
`

type sizedResult struct {
	TaskID  uint64 `json:"task_id"`
	State   string `json:"state"`
	Stdout  string `json:"stdout"`
	Stderr  string `json:"stderr"`
	Cores   int    `json:"cores"`
	GotCPUs string `json:"got_cpus"`
}

// sizedRun is what one probe task printed.
type sizedRun struct {
	id         uint64
	cores      int // asked for, 0 = no size
	cpus       []int
	got        string
	omp        string
	places     string
	start, end int64
}

// waitJobs waits for each job; one that does not succeed ends the test
// with the daemon log's tail.
func waitJobs(t *testing.T, d *testenv.Daemon, jobs ...string) {
	t.Helper()
	for _, job := range jobs {
		if code := d.WaitJob(job); code != 0 {
			t.Fatalf("wait %s: exit %d\n%s", job, code, testenv.Tail(d.Log(), 30))
		}
	}
}

func sizedResults(t *testing.T, d *testenv.Daemon, jobs ...string) []sizedRun {
	t.Helper()
	var runs []sizedRun
	for _, job := range jobs {
		var rs []sizedResult
		if err := json.Unmarshal([]byte(d.MustRun("results", "--json", job)), &rs); err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.State != "succeeded" {
				t.Fatalf("task %d: %s\nstdout: %s\nstderr: %s", r.TaskID, r.State, r.Stdout, r.Stderr)
			}
			run := sizedRun{id: r.TaskID, cores: r.Cores, got: r.GotCPUs}
			for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
				k, v, _ := strings.Cut(line, " ")
				switch k {
				case "cpus":
					cpus, err := pinning.ParseCPUList(strings.TrimSpace(v))
					if err != nil {
						t.Fatalf("task %d: %q: %v", r.TaskID, line, err)
					}
					run.cpus = cpus
				case "omp":
					run.omp = v
				case "places":
					run.places = v
				case "start":
					run.start, _ = strconv.ParseInt(v, 10, 64)
				case "end":
					run.end, _ = strconv.ParseInt(v, 10, 64)
				}
			}
			if run.cpus == nil || run.start == 0 || run.end == 0 {
				t.Fatalf("task %d printed %q", r.TaskID, r.Stdout)
			}
			runs = append(runs, run)
		}
	}
	return runs
}

func startSized(t *testing.T, config string) *testenv.Daemon {
	t.Helper()
	testenv.Integration(t)
	unsetCoresOverride(t)
	if cpus := ownCPUs(t); len(cpus) < 2 {
		testenv.SkipOrFail(t, "two slots of one CPU need 2 CPUs; this process may use %v", cpus)
	}
	return testenv.StartDaemonEnv(t, config, "HTEX_CORES=2")
}

// TestSizedTasksDisjointCPUs: 2-core, 1-core and unsized tasks, mixed on
// a pool of two 1-CPU slots, each run on exactly as many CPUs as they
// asked for (one without a size), with OMP_NUM_THREADS and OMP_PLACES for
// those CPUs and the same CPUs in their result, and tasks whose run times
// overlap never share a CPU.
func TestSizedTasksDisjointCPUs(t *testing.T) {
	d := startSized(t, pinBlockConfig)
	var jobs []string
	for i := range 3 {
		jobs = append(jobs, d.Submit("--cores", "2", "--array", "1-2", "--", "sh", "-c", sizeProbe))
		jobs = append(jobs, d.Submit("--cores", "1", "--array", "1-3", "--", "sh", "-c", sizeProbe))
		if i < 2 {
			jobs = append(jobs, d.Submit("--array", "1-3", "--", "sh", "-c", sizeProbe))
		}
	}
	waitJobs(t, d, jobs...)
	runs := sizedResults(t, d, jobs...)
	if len(runs) != 21 {
		t.Fatalf("%d results, want 21", len(runs))
	}
	for _, r := range runs {
		want := max(r.cores, 1)
		if len(r.cpus) != want {
			t.Errorf("task %d (cores %d) ran on CPUs %v, want %d of them", r.id, r.cores, r.cpus, want)
		}
		if r.omp != strconv.Itoa(len(r.cpus)) {
			t.Errorf("task %d on CPUs %v: OMP_NUM_THREADS=%q", r.id, r.cpus, r.omp)
		}
		var places []string
		for _, c := range r.cpus {
			places = append(places, fmt.Sprintf("{%d}", c))
		}
		if r.places != strings.Join(places, ",") {
			t.Errorf("task %d on CPUs %v: OMP_PLACES=%q", r.id, r.cpus, r.places)
		}
		switch {
		case r.cores > 0 && r.got != pinning.FormatCPUList(r.cpus):
			t.Errorf("task %d ran on CPUs %v, its result says %q", r.id, r.cpus, r.got)
		case r.cores == 0 && r.got != "":
			t.Errorf("task %d of one slot: its result says CPUs %q (its slot says it)", r.id, r.got)
		}
	}
	overlaps := 0
	for i, a := range runs {
		for _, b := range runs[i+1:] {
			if a.start < b.end && b.start < a.end {
				overlaps++
				for _, c := range a.cpus {
					if slices.Contains(b.cpus, c) {
						t.Errorf("tasks %d (CPUs %v) and %d (CPUs %v) ran at the same time on CPU %d", a.id, a.cpus, b.id, b.cpus, c)
					}
				}
			}
		}
	}
	if overlaps == 0 {
		t.Errorf("no two tasks ran at the same time: the test checked nothing")
	}
}

// TestSizedMixedUnpinned: without pinning, 2-core and 1-core tasks mixed
// on a pool of two slots all finish; a 2-core task gets OMP_NUM_THREADS=2.
func TestSizedMixedUnpinned(t *testing.T) {
	d := startSized(t, strings.Replace(pinBlockConfig, `cpu_affinity = "block"`, `cpu_affinity = "none"`, 1))
	var jobs []string
	for range 3 {
		jobs = append(jobs, d.Submit("--cores", "2", "--env", "HOLD=0.1", "--", "sh", "-c", sizeProbe))
		jobs = append(jobs, d.Submit("--array", "1-3", "--env", "HOLD=0.1", "--", "sh", "-c", sizeProbe))
	}
	waitJobs(t, d, jobs...)
	runs := sizedResults(t, d, jobs...)
	if len(runs) != 12 {
		t.Fatalf("%d results, want 12", len(runs))
	}
	for _, r := range runs {
		if r.cores == 2 && r.omp != "2" {
			t.Errorf("2-core task %d: OMP_NUM_THREADS=%q", r.id, r.omp)
		}
		if r.got != "" {
			t.Errorf("task %d: unpinned, yet its result says CPUs %q", r.id, r.got)
		}
	}
}

// TestSizedLargeTaskNotStarved: a 2-core task submitted between two
// streams of 1-core tasks on a pool of two slots runs before any task of
// the second stream starts: it reserves the pool, which takes no new task
// until both its slots are free.
func TestSizedLargeTaskNotStarved(t *testing.T) {
	d := startSized(t, pinBlockConfig)
	first := d.Submit("--array", "1-8", "--env", "HOLD=0.2", "--", "sh", "-c", sizeProbe)
	big := d.Submit("--cores", "2", "--env", "HOLD=0.2", "--", "sh", "-c", sizeProbe)
	second := d.Submit("--array", "1-8", "--env", "HOLD=0.2", "--", "sh", "-c", sizeProbe)
	waitJobs(t, d, first, big, second)
	b := sizedResults(t, d, big)[0]
	if len(b.cpus) != 2 {
		t.Fatalf("the 2-core task ran on CPUs %v", b.cpus)
	}
	for _, r := range sizedResults(t, d, second) {
		if r.start < b.start {
			t.Errorf("task %d of the later stream started %.3f s before the 2-core task", r.id, float64(b.start-r.start)/1e9)
		}
	}
}

// TestSizedImpossibleRefused: a size no pool of the config could run is
// refused at submit with a message naming the request and the largest
// pool; a bad value is refused by the client, naming the flag.
func TestSizedImpossibleRefused(t *testing.T) {
	d := startSized(t, pinBlockConfig)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--cores", "3"}, 1, "task 0: --cores 3 does not fit any pool of this config: the largest has 2 CPUs in 2 slots of 1 CPU, 0 GPUs"},
		{[]string{"--gpus", "1"}, 1, "task 0: --gpus 1 does not fit any pool of this config"},
		{[]string{"--cores", "0"}, 2, "--cores 0: must be at least 1"},
		{[]string{"--mem", "lots"}, 2, `--mem "lots": want a positive number`},
	} {
		out, errOut, code := d.Run(append(append([]string{"submit"}, c.args...), "--", "true")...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("submit %v: exit %d, stdout %q, stderr %q; want exit %d and %q", c.args, code, out, errOut, c.code, c.want)
		}
	}
	// What fits runs.
	job := d.Submit("--cores", "2", "--", "true")
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("a 2-core task on two 1-CPU slots: wait exit %d", code)
	}
}

// TestSizedGPUsVendorEnv: a task of two GPUs on a pool of two 1-GPU slots
// (AMD) sees both devices in ROCR_VISIBLE_DEVICES and none of the
// variables AMD drops, whatever the pool inherited; its result says which
// GPUs it got; three GPUs are refused at submit.
func TestSizedGPUsVendorEnv(t *testing.T) {
	testenv.Integration(t)
	var env []string
	for _, k := range deviceVars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range slurmExported {
		env = append(env, k+"="+v)
	}
	d := testenv.StartDaemonEnv(t, strings.Replace(vendorConfig, "VENDOR", "amd", 1), env...)
	probe := `env | grep -E '^(` + strings.Join(deviceVars, "|") + `)=' | sort`
	for _, c := range []struct {
		gpus string
		want map[string]string
	}{
		{"2", map[string]string{"ROCR_VISIBLE_DEVICES": "0,1", "ZE_AFFINITY_MASK": "0,1,2,3"}},
		{"1", map[string]string{"ROCR_VISIBLE_DEVICES": "0", "ZE_AFFINITY_MASK": "0,1,2,3"}},
	} {
		job := d.Submit("--gpus", c.gpus, "--", "sh", "-c", probe)
		if code := d.WaitJob(job); code != 0 {
			t.Fatalf("--gpus %s: wait exit %d\n%s", c.gpus, code, testenv.Tail(d.Log(), 30))
		}
		var rs []struct {
			Stdout  string `json:"stdout"`
			GotGPUs string `json:"got_gpus"`
			GPUs    int    `json:"gpus"`
		}
		if err := json.Unmarshal([]byte(d.MustRun("results", "--json", job)), &rs); err != nil || len(rs) != 1 {
			t.Fatalf("results: %v %+v", err, rs)
		}
		got := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(rs[0].Stdout), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				got[k] = v
			}
		}
		if !maps.Equal(got, c.want) {
			t.Errorf("--gpus %s: the task sees %v, want %v", c.gpus, got, c.want)
		}
		if rs[0].GotGPUs != c.want["ROCR_VISIBLE_DEVICES"] || strconv.Itoa(rs[0].GPUs) != c.gpus {
			t.Errorf("--gpus %s: result says gpus %d, got %q", c.gpus, rs[0].GPUs, rs[0].GotGPUs)
		}
	}
	_, errOut, code := d.Run("submit", "--gpus", "3", "--", "true")
	if code != 1 || !strings.Contains(errOut, "--gpus 3 does not fit any pool of this config") {
		t.Errorf("--gpus 3 on 2 GPUs: exit %d, %q", code, errOut)
	}
}
