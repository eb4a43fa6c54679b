package e2e

// Slurm blocks for real: daemons with provider kind = "slurm" against the
// four-node cluster that scripts/slurm-cluster.sh runs on this machine
// (n1..n4, partition debug, 2 CPUs each, OverSubscribe=FORCE). Each test
// gates on the cluster answering and skips on a developer machine without
// one (fails in CI).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
)

// requireSlurm skips (fails in CI) unless sinfo answers with at least one
// usable node.
func requireSlurm(t *testing.T) {
	t.Helper()
	testenv.Integration(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sinfo", "-h", "-o", "%T").CombinedOutput()
	for _, line := range strings.Fields(string(out)) {
		switch line {
		case "idle", "mixed", "allocated":
			return
		}
	}
	msg := strings.TrimSpace(string(out))
	if err != nil {
		msg += " (" + err.Error() + ")"
	}
	testenv.SkipOrFail(t, "no usable Slurm cluster (sinfo -h -o %%T said %q); run scripts/slurm-cluster.sh up", msg)
}

// slurmConfig is a slurm daemon's config: srun launcher, shared nodes (all
// four slurmd run on this host), short heartbeats. extraProvider and
// extraStrategy are appended to their tables.
func slurmConfig(nodesPerBlock, initBlocks, maxBlocks int, extraExecutor, extraProvider, strategy string) string {
	return fmt.Sprintf(`
[executor]
label = "slurm-e2e"
max_workers_per_node = 2
cores_per_worker = 1
heartbeat_period = 1
heartbeat_threshold = 10
%s
[provider]
kind = "slurm"
partition = "debug"
nodes_per_block = %d
init_blocks = %d
max_blocks = %d
walltime = "00:10:00"
launcher = "srun"
exclusive = false
cmd_timeout = 30
%s
[strategy]
period = 1
%s
`, extraExecutor, nodesPerBlock, initBlocks, maxBlocks, extraProvider, strategy)
}

type slurmStatus = testenv.Status

func slurmStatusOf(t *testing.T, d *testenv.Daemon) slurmStatus {
	t.Helper()
	return d.Status()
}

// waitStatus polls `status --json` until cond holds; it fails the test
// after limit (a generous deadline, not an assertion on speed).
func slurmWait(t *testing.T, d *testenv.Daemon, what string, limit time.Duration, cond func(slurmStatus) bool) slurmStatus {
	t.Helper()
	deadline := time.Now().Add(limit)
	var st slurmStatus
	for {
		st = slurmStatusOf(t, d)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(st, "", "  ")
			t.Fatalf("waited %s for %s; last status:\n%s\nsqueue:\n%s\ndaemon log:\n%s", limit, what, b, slurmQueue(), testenv.Tail(d.Log(), 60))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func slurmQueue() string {
	out, _ := exec.Command("squeue", "-t", "all", "-o", "%i %j %t %R").CombinedOutput()
	return string(out)
}

// blockStderr is the text of every block's stderr, for failure messages.
func slurmBlockStderr(d *testenv.Daemon) string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(d.RunDir, "blocks", "*", "stderr"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "== %s\n%s\n", f, testenv.Tail(string(data), 30))
	}
	return b.String()
}

// startSlurmDaemon starts a daemon and, at the end of the test (daemon
// stopped, blocks cancelled), fails it if the daemon or a pool reported a
// data race (the binary is built with -race when the tests are).
func startSlurmDaemon(t *testing.T, cfg string) *testenv.Daemon {
	t.Helper()
	var d *testenv.Daemon
	t.Cleanup(func() {
		if d == nil {
			return
		}
		d.Stop()
		if text := d.Log() + slurmBlockStderr(d); strings.Contains(text, "WARNING: DATA RACE") {
			t.Errorf("data race reported:\n%s", text)
		}
	})
	d = testenv.StartDaemon(t, cfg)
	return d
}

// TestSlurmTwoBlocksThousandTasks: two blocks of two nodes each start one
// pool per node through srun; 1,000 tasks run on all four nodes, and each
// result names the Slurm node its task ran on.
func TestSlurmTwoBlocksThousandTasks(t *testing.T) {
	requireSlurm(t)
	// cores_per_node = 2 asks Slurm for both CPUs of each node
	// (--cpus-per-task=2), so the two blocks land on four distinct nodes
	// even though the partition lets jobs share nodes.
	d := startSlurmDaemon(t, slurmConfig(2, 2, 2, `cpu_affinity = "block"`, "cores_per_node = 2", `kind = "none"`))
	// Every pool first, so that every node gets work however fast the
	// first block alone would be.
	st := slurmWait(t, d, "four pools (two blocks of two nodes)", 2*time.Minute, func(s slurmStatus) bool { return len(s.Pools) == 4 })
	nodes := map[string]bool{}
	for _, p := range st.Pools {
		nodes[p.Node] = true
		if p.Slots != 2 {
			t.Errorf("pool %s on %s has %d slots, want 2", p.ID, p.Node, p.Slots)
		}
	}
	if len(nodes) != 4 {
		t.Fatalf("pools on %v, want four distinct Slurm nodes", st.Pools)
	}
	for _, b := range st.Blocks {
		if b.State != "running" || b.Pools != 2 || b.JobID == "" {
			t.Errorf("block %+v: want running with 2 pools and a Slurm job id", b)
		}
	}

	job := d.Submit("--array", "1-1000", "--", "sh", "-c",
		`printf '%s %s\n' "$SLURMD_NODENAME" "$(grep Cpus_allowed_list /proc/self/status | cut -f2)"`)
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait: exit %d\n%s", code, testenv.Tail(d.Log(), 40))
	}
	rs := d.Results(job)
	if len(rs) != 1000 {
		t.Fatalf("got %d results, want 1000", len(rs))
	}
	perNode := map[string]int{}
	cpus := map[string]map[string]bool{} // node -> CPU lists seen
	blocksOf := map[string]int64{}
	bad := 0
	for _, r := range rs {
		f := strings.Fields(r.Stdout)
		if r.State != "succeeded" || r.ExitCode != 0 || len(f) != 2 {
			if bad++; bad <= 5 {
				t.Errorf("task %d: state %s exit %d stdout %q stderr %q error %q", r.TaskID, r.State, r.ExitCode, r.Stdout, r.Stderr, r.Error)
			}
			continue
		}
		node, list := f[0], f[1]
		if r.Node != node {
			if bad++; bad <= 5 {
				t.Errorf("task %d ran on SLURMD_NODENAME=%s but its result says node %q", r.TaskID, node, r.Node)
			}
		}
		perNode[node]++
		if cpus[node] == nil {
			cpus[node] = map[string]bool{}
		}
		cpus[node][list] = true
		if prev, ok := blocksOf[node]; ok && prev != r.BlockID {
			t.Errorf("node %s appears in blocks %d and %d", node, prev, r.BlockID)
		}
		blocksOf[node] = r.BlockID
	}
	if bad > 0 {
		t.Fatalf("%d tasks bad", bad)
	}
	var names []string
	for n := range perNode {
		names = append(names, n)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "n1,n2,n3,n4" {
		t.Fatalf("tasks ran on %v, want n1..n4 (per node: %v)", names, perNode)
	}
	perBlock := map[int64]int{}
	for _, b := range blocksOf {
		perBlock[b]++
	}
	if len(perBlock) != 2 {
		t.Errorf("nodes by block %v: want two blocks of two nodes", blocksOf)
	}
	// cpu_affinity = "block" with two slots on a 2-CPU node: each task
	// is pinned to one CPU, and both CPUs of a node are used.
	for n, lists := range cpus {
		for l := range lists {
			if l != "0" && l != "1" {
				t.Errorf("node %s: a task ran with Cpus_allowed_list %q, want one CPU (0 or 1)", n, l)
			}
		}
	}
	t.Logf("tasks per node: %v; CPU lists: %v", perNode, cpus)
}

// TestSlurmSubmitFromJobScript: a job submitted with plain sbatch runs
// `htexctl submit --wait` against the daemon and gets its task's result.
func TestSlurmSubmitFromJobScript(t *testing.T) {
	requireSlurm(t)
	d := startSlurmDaemon(t, slurmConfig(1, 1, 1, "", "", `kind = "none"`))
	dir := t.TempDir()
	outFile := filepath.Join(dir, "job.out")
	script := filepath.Join(dir, "job.sh")
	body := fmt.Sprintf("#!/bin/bash\nexport HTEX_RUN_DIR=%s\n%s submit --wait --name from-a-job -- echo from-a-job\necho \"submit exit $?\"\n",
		slurmShq(d.RunDir), slurmShq(d.Bin))
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sbatch", "--parsable", "-p", "debug", "-N", "1", "-J", "htex-e2e-client",
		"-t", "00:05:00", "--chdir", dir, "-o", outFile, script).CombinedOutput()
	if err != nil {
		t.Fatalf("sbatch: %v\n%s", err, out)
	}
	jobID := strings.TrimSpace(strings.Split(strings.TrimSpace(string(out)), ";")[0])
	t.Cleanup(func() { exec.Command("scancel", jobID).Run() })

	// The job ends when its submit --wait does; its output says how.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		data, _ := os.ReadFile(outFile)
		if strings.Contains(string(data), "submit exit ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s did not finish within 2 minutes; output so far:\n%s\nsqueue:\n%s\ndaemon log:\n%s\n%s",
				jobID, data, slurmQueue(), testenv.Tail(d.Log(), 40), slurmBlockStderr(d))
		}
		time.Sleep(250 * time.Millisecond)
	}
	data, _ := os.ReadFile(outFile)
	text := string(data)
	if !strings.Contains(text, "submit exit 0") || !strings.Contains(text, "1 succeeded, 0 failed of 1") {
		t.Fatalf("the job's output does not show success:\n%s\ndaemon log:\n%s", text, testenv.Tail(d.Log(), 40))
	}
	var rs []testenv.Result
	if err := json.Unmarshal([]byte(d.MustRun("results", "--json")), &rs); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rs {
		if strings.TrimSpace(r.Stdout) == "from-a-job" {
			found = true
			if r.State != "succeeded" || r.ExitCode != 0 || !strings.HasPrefix(r.Node, "n") {
				t.Errorf("task from the job: %+v", r)
			}
			if r.Argv[0] != "echo" {
				t.Errorf("argv %v", r.Argv)
			}
		}
	}
	if !found {
		t.Fatalf("results do not show the task submitted from the job: %+v", rs)
	}
}

// TestSlurmScancelBlockMidRun: a block cancelled behind the daemon's back
// (scancel) loses no task: its in-flight tasks run again on the other block.
func TestSlurmScancelBlockMidRun(t *testing.T) {
	requireSlurm(t)
	// Four slots per node (sleep needs no CPU), so that the surviving
	// block alone finishes the work in a few rounds.
	cfg := slurmConfig(2, 2, 2, "", "cores_per_node = 2", `kind = "none"`)
	cfg = strings.Replace(cfg, "max_workers_per_node = 2\ncores_per_worker = 1\n", "max_workers_per_node = 4\ncores_per_worker = 0.5\n", 1)
	d := startSlurmDaemon(t, cfg)
	slurmWait(t, d, "four pools", 2*time.Minute, func(s slurmStatus) bool { return len(s.Pools) == 4 })
	job := d.Submit("--array", "1-40", "--", "sleep", "3")
	st := slurmWait(t, d, "both blocks running tasks", time.Minute, func(s slurmStatus) bool {
		n := 0
		for _, b := range s.Blocks {
			if b.Busy > 0 {
				n++
			}
		}
		return n == 2
	})
	victim := st.Blocks[0]
	if out, err := exec.Command("scancel", victim.JobID).CombinedOutput(); err != nil {
		t.Fatalf("scancel %s: %v\n%s", victim.JobID, err, out)
	}
	t.Logf("cancelled block %d (Slurm job %s) with %d tasks running", victim.ID, victim.JobID, victim.Busy)

	if code := d.WaitJob(job); code != 0 {
		t.Errorf("wait: exit %d\n%s\n%s", code, testenv.Tail(d.Log(), 60), slurmBlockStderr(d))
	}
	rs := d.Results(job)
	if len(rs) != 40 {
		t.Fatalf("got %d results, want 40", len(rs))
	}
	retried := 0
	for _, r := range rs {
		if r.State != "succeeded" || r.ExitCode != 0 {
			t.Errorf("task %d: state %s exit %d error %q attempts %d block %d", r.TaskID, r.State, r.ExitCode, r.Error, r.Attempts, r.BlockID)
		}
		if r.Attempts >= 2 {
			retried++
			if r.BlockID == victim.ID {
				t.Errorf("task %d was retried but its final run is on the cancelled block %d", r.TaskID, victim.ID)
			}
		}
	}
	if retried == 0 {
		t.Errorf("no task has attempts >= 2, though block %d had %d running when it was cancelled", victim.ID, victim.Busy)
	}
	// The daemon saw the block end (not as a failure: its pools had
	// registered) and, with strategy none, did not replace it.
	st = slurmWait(t, d, "the cancelled block reported as ended", time.Minute, func(s slurmStatus) bool {
		for _, b := range s.Blocks {
			if b.ID == victim.ID {
				return b.State == "cancelled"
			}
		}
		return false
	})
	if len(st.Blocks) != 2 {
		t.Errorf("blocks %+v: want the two first blocks only (strategy none)", st.Blocks)
	}
	if strings.Contains(st.Scaler, "stopped submitting") || strings.Contains(d.Log(), "block failed") {
		t.Errorf("scaler %q: a cancelled block whose pools ran is no failure\n%s", st.Scaler, testenv.Tail(d.Log(), 30))
	}
	t.Logf("%d of 40 tasks ran twice", retried)
}

// TestSlurmWorkerInit: worker_init runs in the batch script before the
// pools start, and what it exports reaches the tasks.
func TestSlurmWorkerInit(t *testing.T) {
	requireSlurm(t)
	d := startSlurmDaemon(t, slurmConfig(1, 1, 1, "", `worker_init = "export HTEX_TEST_MARK=from-worker-init"`, `kind = "none"`))
	job := d.Submit("--", "sh", "-c", `echo "mark=$HTEX_TEST_MARK"`)
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait: exit %d\n%s", code, testenv.Tail(d.Log(), 40))
	}
	rs := d.Results(job)
	if len(rs) != 1 || strings.TrimSpace(rs[0].Stdout) != "mark=from-worker-init" {
		t.Fatalf("results %+v: want stdout mark=from-worker-init", rs)
	}
}

// TestSlurmBlockFailsToStart: sbatch refuses the block (no such
// partition): status shows sbatch's message and the block's stderr path,
// the daemon log has it, and after max_block_failures the scaler halts
// and says so.
func TestSlurmBlockFailsToStart(t *testing.T) {
	requireSlurm(t)
	cfg := slurmConfig(1, 1, 1, "", "", "kind = \"simple\"\nmax_block_failures = 2")
	cfg = strings.Replace(cfg, `partition = "debug"`, `partition = "nosuchpartition"`, 1)
	d := startSlurmDaemon(t, cfg)
	// Queued work makes the simple strategy want a block again after each
	// failure, until it halts.
	d.Submit("--", "true")
	st := slurmWait(t, d, "the scaler to halt", time.Minute, func(s slurmStatus) bool {
		return strings.Contains(s.Scaler, "stopped submitting")
	})
	if !strings.Contains(st.Scaler, "2 failed in a row") || !strings.Contains(st.Scaler, "invalid partition") {
		t.Errorf("scaler %q: want the failure count and sbatch's message", st.Scaler)
	}
	if len(st.Blocks) != 2 {
		t.Errorf("blocks %+v: want exactly 2 (max_block_failures), no more submissions", st.Blocks)
	}
	for _, b := range st.Blocks {
		if b.State != "failed" || !strings.Contains(b.Message, "invalid partition specified") ||
			!strings.Contains(b.Message, b.StderrPath) || b.StderrPath == "" {
			t.Errorf("block %+v: want failed, sbatch's message and the stderr path", b)
		}
		data, err := os.ReadFile(b.StderrPath)
		if err != nil || !strings.Contains(string(data), "invalid partition specified") {
			t.Errorf("block %d stderr %s: %v %q", b.ID, b.StderrPath, err, data)
		}
	}
	text := d.MustRun("status")
	if !strings.Contains(text, "invalid partition specified") || !strings.Contains(text, "stopped submitting blocks after 2 failed") ||
		!strings.Contains(text, filepath.Join(d.RunDir, "blocks", "1", "stderr")) {
		t.Errorf("status text lacks sbatch's message, the stderr path or the halt:\n%s", text)
	}
	logData, err := os.ReadFile(filepath.Join(d.RunDir, "daemon.log"))
	if log := string(logData); err != nil || !strings.Contains(log, "invalid partition specified") ||
		!strings.Contains(log, "stopped submitting blocks") {
		t.Errorf("daemon.log (%v) lacks sbatch's message or the halt:\n%s", err, testenv.Tail(log, 30))
	}
	// The halted scaler stays halted: a later decision (its line carries
	// the time of the decision) submits nothing.
	before := slurmStatusOf(t, d)
	after := slurmWait(t, d, "a later scaler decision", time.Minute, func(s slurmStatus) bool { return s.Scaler != before.Scaler })
	if len(after.Blocks) != 2 || !strings.Contains(after.Scaler, "stopped submitting") {
		t.Errorf("after the halt: scaler %q, %d blocks; want still halted with 2 blocks", after.Scaler, len(after.Blocks))
	}
}

func slurmShq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
