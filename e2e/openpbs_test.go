package e2e

// PBS blocks for real: daemons with provider kind = "pbs" against the
// four-node OpenPBS that scripts/pbs-cluster.sh runs on this machine
// (server pbshost, nodes pbs1..pbs4 with 2 CPUs each, queues workq and
// debug), the pools started by the pbsdsh launcher. Each test gates on the
// server answering and skips on a developer machine without one (fails in
// CI). What OpenPBS cannot show (PALS mpiexec, ALCF's queue rules) stays on
// the emulator (pbs_test.go).

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
)

// openpbsBin is where scripts/pbs-cluster.sh installs OpenPBS.
const openpbsBin = "/opt/pbs/bin"

var openpbsNodes = []string{"pbs1", "pbs2", "pbs3", "pbs4"}

// requireOpenPBS skips (fails in CI) unless the test server answers and
// its four nodes are up; it returns the environment for the daemon and
// for the PBS commands (PBS's bin folder on PATH).
func requireOpenPBS(t *testing.T) []string {
	t.Helper()
	testenv.Integration(t)
	env := []string{"PATH=" + openpbsBin + string(os.PathListSeparator) + os.Getenv("PATH")}
	out, err := openpbsCmd(env, "pbsnodes", "-a", "-F", "json")
	if err != nil {
		testenv.SkipOrFail(t, "no OpenPBS test server (pbsnodes -a: %v: %s); run scripts/pbs-cluster.sh up", err, strings.TrimSpace(out))
		return nil
	}
	var nodes struct {
		Nodes map[string]struct {
			State string `json:"state"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(out), &nodes); err != nil {
		testenv.SkipOrFail(t, "pbsnodes -a -F json: %v\n%s", err, out)
	}
	for _, n := range openpbsNodes {
		node, ok := nodes.Nodes[n]
		if !ok || strings.Contains(node.State, "down") || strings.Contains(node.State, "offline") {
			testenv.SkipOrFail(t, "OpenPBS node %s is missing or %q (want free); run scripts/pbs-cluster.sh up", n, node.State)
		}
	}
	return env
}

// openpbsCmd runs a PBS command with env added and returns its output.
func openpbsCmd(env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(openpbsBin, name), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// openpbsJob is the part of `qstat -f -F json -x` the tests read.
type openpbsJob struct {
	Name     string `json:"Job_Name"`
	State    string `json:"job_state"`
	ExecHost string `json:"exec_host"`
	Comment  string `json:"comment"`
}

// openpbsJobs returns the server's jobs, history included.
func openpbsJobs(t *testing.T, env []string, ids ...string) map[string]openpbsJob {
	t.Helper()
	out, err := openpbsCmd(env, "qstat", append([]string{"-f", "-F", "json", "-x"}, ids...)...)
	if err != nil && !strings.Contains(out, "{") {
		t.Fatalf("qstat: %v\n%s", err, out)
	}
	var doc struct {
		Jobs map[string]openpbsJob `json:"Jobs"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &doc); err != nil {
		t.Fatalf("qstat -f -F json: %v\n%s", err, out)
	}
	return doc.Jobs
}

// openpbsQueue is `qstat -x` for failure messages.
func openpbsQueue(env []string) string {
	out, _ := openpbsCmd(env, "qstat", "-x", "-w")
	return out
}

// openpbsHosts are the distinct hosts of an exec_host ("pbs1/0*2+pbs2/0*2").
func openpbsHosts(execHost string) []string {
	var hosts []string
	for part := range strings.SplitSeq(execHost, "+") {
		if h, _, _ := strings.Cut(part, "/"); h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	slices.Sort(hosts)
	return hosts
}

// openpbsConfig is a PBS daemon config for the test server: blocks of
// whole 2-CPU nodes, the pbsdsh launcher, short heartbeats; the label
// names the run's jobs (Job_Name htex-<label>-<block>).
func openpbsConfig(label string, nodesPerBlock, initBlocks, maxBlocks int, walltime, extraExecutor, extraProvider, strategy string) string {
	return fmt.Sprintf(`
[executor]
label = %q
max_workers_per_node = 2
cores_per_worker = 1
heartbeat_period = 1
heartbeat_threshold = 10
%s
[provider]
kind = "pbs"
nodes_per_block = %d
cpus_per_node = 2
launcher = "pbsdsh"
walltime = %q
init_blocks = %d
max_blocks = %d
cmd_timeout = 30
%s
[strategy]
period = 1
%s
`, label, extraExecutor, nodesPerBlock, walltime, initBlocks, maxBlocks, extraProvider, strategy)
}

func openpbsLabel(prefix string) string { return fmt.Sprintf("%s%d", prefix, rand.IntN(1_000_000)) }

// startOpenPBSDaemon starts a daemon with PBS on PATH; at the end of the
// test (daemon stopped, blocks qdel'ed) it fails the test on a data race
// reported by the daemon or a pool.
func startOpenPBSDaemon(t *testing.T, env []string, cfg string) *testenv.Daemon {
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
		openpbsDrain(t, env, cfg)
	})
	d = testenv.StartDaemonEnv(t, cfg, env...)
	return d
}

var labelLine = regexp.MustCompile(`(?m)^label = "([^"]+)"`)

// openpbsDrain force-deletes the jobs of the run (Job_Name htex-<label>-<n>)
// that outlive its daemon, and waits for them to end: their pools would
// otherwise hold the nodes until they notice the daemon is gone, and the
// next test's blocks would wait in the queue.
func openpbsDrain(t *testing.T, env []string, cfg string) {
	m := labelLine.FindStringSubmatch(cfg)
	if m == nil {
		return
	}
	prefix := "htex-" + m[1] + "-"
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		var live []string
		for id, j := range openpbsJobs(t, env) {
			if strings.HasPrefix(j.Name, prefix) && j.State != "F" {
				live = append(live, id)
			}
		}
		if len(live) == 0 {
			return
		}
		openpbsCmd(env, "qdel", append([]string{"-W", "force"}, live...)...)
	}
	t.Errorf("jobs of %s* still unfinished 30 s after the test\n%s", prefix, openpbsQueue(env))
}

func openpbsWait(t *testing.T, d *testenv.Daemon, env []string, what string, limit time.Duration, cond func(testenv.Status) bool) testenv.Status {
	t.Helper()
	return d.WaitStatusShowing(what, limit, cond, func() string { return "qstat -x:\n" + openpbsQueue(env) + "\n" + slurmBlockStderr(d) })
}

// TestOpenPBSTwoBlocksManyTasks: two blocks of two nodes each; pbsdsh
// starts one pool on each node PBS gave the block (its exec_host), every
// pool named after its node; 400 tasks run on all four nodes, pinned one
// CPU each, and see what worker_init exported.
func TestOpenPBSTwoBlocksManyTasks(t *testing.T) {
	env := requireOpenPBS(t)
	d := startOpenPBSDaemon(t, env, openpbsConfig(openpbsLabel("many"), 2, 2, 2, "00:10:00",
		`cpu_affinity = "block"`, `worker_init = "export HTEX_TEST_MARK=from-worker-init"`, `kind = "none"`))
	st := openpbsWait(t, d, env, "four pools (two blocks of two nodes)", 3*time.Minute, func(s testenv.Status) bool { return len(s.Pools) == 4 })

	// Each block's pools are on exactly the nodes PBS allocated to its job.
	poolNodes := map[int64][]string{}
	for _, p := range st.Pools {
		poolNodes[p.BlockID] = append(poolNodes[p.BlockID], p.Node)
		if p.Slots != 2 {
			t.Errorf("pool %s on %s has %d slots, want 2", p.ID, p.Node, p.Slots)
		}
	}
	var all []string
	for _, b := range st.Blocks {
		if b.State != "running" || b.Pools != 2 || b.JobID == "" {
			t.Errorf("block %+v: want running with 2 pools and a PBS job id", b)
		}
		jobs := openpbsJobs(t, env, b.JobID)
		j, ok := jobs[b.JobID]
		if !ok {
			t.Fatalf("qstat does not know block %d's job %s: %v", b.ID, b.JobID, jobs)
		}
		got := slices.Sorted(slices.Values(poolNodes[b.ID]))
		if want := openpbsHosts(j.ExecHost); !slices.Equal(got, want) || len(want) != 2 {
			t.Errorf("block %d (job %s, exec_host %s): pools on %v, want one on each of %v", b.ID, b.JobID, j.ExecHost, got, want)
		}
		all = append(all, got...)
	}
	if slices.Sort(all); !slices.Equal(all, openpbsNodes) {
		t.Fatalf("pools on %v, want one on each of %v", all, openpbsNodes)
	}

	const n = 400
	job := d.Submit("--array", fmt.Sprintf("1-%d", n), "--", "sh", "-c",
		`printf '%s %s %s\n' "$HTEX_NODE_NAME" "$HTEX_TEST_MARK" "$(grep Cpus_allowed_list /proc/self/status | cut -f2)"`)
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait: exit %d\n%s", code, testenv.Tail(d.Log(), 40))
	}
	rs := d.Results(job)
	if len(rs) != n {
		t.Fatalf("got %d results, want %d", len(rs), n)
	}
	perNode := map[string]int{}
	cpus := map[string]bool{}
	bad := 0
	for _, r := range rs {
		f := strings.Fields(r.Stdout)
		if r.State != "succeeded" || len(f) != 3 || f[0] != r.Node || f[1] != "from-worker-init" || (f[2] != "0" && f[2] != "1") {
			if bad++; bad <= 5 {
				t.Errorf("task %d on %q: state %s exit %d stdout %q stderr %q; want succeeded, \"<node> from-worker-init <one CPU>\"",
					r.TaskID, r.Node, r.State, r.ExitCode, r.Stdout, r.Stderr)
			}
			continue
		}
		perNode[r.Node]++
		cpus[f[2]] = true
	}
	if bad > 0 {
		t.Fatalf("%d of %d tasks bad", bad, n)
	}
	if got := slices.Sorted(func(yield func(string) bool) {
		for k := range perNode {
			if !yield(k) {
				return
			}
		}
	}); !slices.Equal(got, openpbsNodes) {
		t.Errorf("tasks ran on %v (%v), want all of %v", got, perNode, openpbsNodes)
	}
	if !cpus["0"] || !cpus["1"] {
		t.Errorf("tasks pinned to CPUs %v, want both CPU 0 and CPU 1 used", cpus)
	}
	t.Logf("tasks per node: %v", perNode)
}

// TestOpenPBSQdelLosesNoTask: qdel of one of two running blocks while its
// pools run tasks; the tasks of the qdel'ed block run again on the other
// block and every task ends succeeded. The tasks wait for a gate file, so
// that exactly the tasks the victim holds are interrupted.
func TestOpenPBSQdelLosesNoTask(t *testing.T) {
	env := requireOpenPBS(t)
	t0 := time.Now()
	d := startOpenPBSDaemon(t, env, openpbsConfig(openpbsLabel("qdel"), 2, 2, 2, "00:10:00", "", "", `kind = "none"`))
	openpbsWait(t, d, env, "four pools", 3*time.Minute, func(s testenv.Status) bool { return len(s.Pools) == 4 })

	gate := filepath.Join(t.TempDir(), "gate")
	job := d.Submit("--env", "GATE="+gate, "--array", "1-16", "--", "sh", "-c",
		`while [ ! -e "$GATE" ]; do sleep 0.05; done; echo done {}`)
	// 16 tasks, 8 slots: each block holds 4 tasks waiting at the gate.
	st := openpbsWait(t, d, env, "both blocks running 4 tasks", time.Minute, func(s testenv.Status) bool {
		return len(s.Blocks) == 2 && s.Blocks[0].Busy == 4 && s.Blocks[1].Busy == 4
	})
	victim, survivor := st.Blocks[0], st.Blocks[1]
	if out, err := openpbsCmd(env, "qdel", victim.JobID); err != nil {
		t.Fatalf("qdel %s: %v\n%s", victim.JobID, err, out)
	}
	openpbsWait(t, d, env, "the qdel'ed block cancelled", time.Minute, func(s testenv.Status) bool {
		for _, b := range s.Blocks {
			if b.ID == victim.ID {
				return b.State == "cancelled"
			}
		}
		return false
	})
	t.Logf("%.1fs: block %d (%s) cancelled; opening the gate", time.Since(t0).Seconds(), victim.ID, victim.JobID)
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code := d.WaitJob(job); code != 0 {
		t.Errorf("wait: exit %d\n%s", code, testenv.Tail(d.Log(), 60))
	}
	t.Logf("%.1fs: all tasks done", time.Since(t0).Seconds())
	rs := d.Results(job)
	if len(rs) != 16 {
		t.Fatalf("got %d results, want 16", len(rs))
	}
	retried := 0
	for _, r := range rs {
		if r.State != "succeeded" || strings.TrimSpace(r.Stdout) != fmt.Sprintf("done %d", *r.ArrayIndex) {
			t.Errorf("task %d: state %s exit %d error %q attempts %d block %d stdout %q", r.TaskID, r.State, r.ExitCode, r.Error, r.Attempts, r.BlockID, r.Stdout)
		}
		if r.BlockID != survivor.ID {
			t.Errorf("task %d finished on block %d, want %d (the victim %d ended with the gate closed)", r.TaskID, r.BlockID, survivor.ID, victim.ID)
		}
		if r.Attempts == 2 {
			retried++
		}
	}
	if retried != 4 {
		t.Errorf("%d tasks have 2 attempts, want the 4 the qdel'ed block %d was running", retried, victim.ID)
	}
	jobs := openpbsJobs(t, env, victim.JobID)
	if j := jobs[victim.JobID]; j.State != "F" {
		t.Errorf("victim job %s: job_state %q, want F", victim.JobID, j.State)
	}
}

// TestOpenPBSWalltime: a block whose job reaches its walltime is killed by
// PBS (Exit_status -29, JOB_EXEC_KILL_WALLTIME); the daemon reports the
// block as timed out, and the task it was running runs again on the next
// block.
func TestOpenPBSWalltime(t *testing.T) {
	env := requireOpenPBS(t)
	// worker_init hides the block's end from the pool, which would
	// otherwise drain before the walltime: here PBS must end the job.
	d := startOpenPBSDaemon(t, env, openpbsConfig(openpbsLabel("wall"), 1, 1, 1, "00:00:20", "",
		`worker_init = "unset HTEX_BLOCK_END"`, `kind = "simple"`))
	mark := filepath.Join(t.TempDir(), "first-run")
	// The first run outlives the block; the second (on a new block) ends at once.
	job := d.Submit("--env", "MARK="+mark, "--", "sh", "-c", `if [ -e "$MARK" ]; then echo second run; else touch "$MARK"; sleep 600; fi`)
	st := openpbsWait(t, d, env, "block 1 ended by its walltime", 2*time.Minute, func(s testenv.Status) bool {
		return len(s.Blocks) > 0 && s.Blocks[0].State == "timeout"
	})
	t.Logf("block 1: %+v", st.Blocks[0])
	if !strings.Contains(st.Blocks[0].Message, "walltime") {
		t.Errorf("block 1 message %q: want it to say walltime", st.Blocks[0].Message)
	}
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait: exit %d\n%s", code, testenv.Tail(d.Log(), 40))
	}
	rs := d.Results(job)
	if len(rs) != 1 || rs[0].State != "succeeded" || strings.TrimSpace(rs[0].Stdout) != "second run" || rs[0].Attempts != 2 || rs[0].BlockID == st.Blocks[0].ID {
		t.Fatalf("results %+v: want one task succeeded on its second attempt, on a later block", rs)
	}
}

// TestOpenPBSImpossibleBlockPending: a block of more nodes than the server
// has stays queued; `htexctl status` shows it pending with the scheduler's
// comment, word for word.
func TestOpenPBSImpossibleBlockPending(t *testing.T) {
	env := requireOpenPBS(t)
	d := startOpenPBSDaemon(t, env, openpbsConfig(openpbsLabel("big"), len(openpbsNodes)+1, 1, 1, "00:10:00", "", "", `kind = "none"`))
	var comment string
	st := openpbsWait(t, d, env, "the block pending with the scheduler's comment", 2*time.Minute, func(s testenv.Status) bool {
		if len(s.Blocks) != 1 || s.Blocks[0].JobID == "" {
			return false
		}
		comment = openpbsJobs(t, env, s.Blocks[0].JobID)[s.Blocks[0].JobID].Comment
		return comment != "" && s.Blocks[0].State == "pending" && strings.Contains(s.Blocks[0].Message, comment)
	})
	t.Logf("block: %+v", st.Blocks[0])
	if !strings.Contains(comment, "Not Running") && !strings.Contains(comment, "Can Never Run") {
		t.Errorf("scheduler comment %q: want it to say why the job does not run", comment)
	}
	if text := d.MustRun("status"); !strings.Contains(text, comment) {
		t.Errorf("htexctl status lacks the comment %q:\n%s", comment, text)
	}
}

// TestOpenPBSResumeAdoptsBlock: the daemon is killed with SIGKILL while its
// PBS block runs tasks; the restarted daemon adopts the running job (no
// second qsub), its pools register again, and every task runs once.
func TestOpenPBSResumeAdoptsBlock(t *testing.T) {
	env := requireOpenPBS(t)
	label := openpbsLabel("resume")
	cfg := openpbsConfig(label, 2, 1, 1, "00:10:00", "prefetch_capacity = 2", "", `kind = "none"`)
	cfg = strings.Replace(cfg, "heartbeat_threshold = 10", "heartbeat_threshold = 60", 1)
	d := startOpenPBSDaemon(t, env, cfg)
	runsLog := filepath.Join(t.TempDir(), "runs")
	const n = 200
	job := d.Submit("--array", fmt.Sprintf("1-%d", n), "--shell", "--", fmt.Sprintf(
		"echo $HTEX_TASK_ID >> %s; if [ {} -ge 60 ] && [ {} -lt 66 ]; then sleep 3; else sleep 0.02; fi", runsLog))
	before := openpbsWait(t, d, env, "50 tasks done on the PBS block", 3*time.Minute, func(s testenv.Status) bool {
		return s.Succeeded >= 50 && len(s.Pools) == 2 && len(s.Blocks) == 1
	})
	pbsJob := before.Blocks[0].JobID
	d.Kill9()
	if j := openpbsJobs(t, env, pbsJob)[pbsJob]; j.State != "R" {
		t.Fatalf("PBS job %s is %q after the daemon died, want R", pbsJob, j.State)
	}
	d.Start()
	st := openpbsWait(t, d, env, "both pools registered again", time.Minute, func(s testenv.Status) bool { return len(s.Pools) == 2 })
	var idsBefore, idsAfter []string
	for i := range st.Pools {
		idsBefore, idsAfter = append(idsBefore, before.Pools[i].ID), append(idsAfter, st.Pools[i].ID)
	}
	if slices.Sort(idsBefore); !slices.Equal(idsBefore, slices.Sorted(slices.Values(idsAfter))) {
		t.Errorf("pools after restart %v, want the surviving %v", idsAfter, idsBefore)
	}
	if len(st.Blocks) != 1 || st.Blocks[0].JobID != pbsJob || st.Blocks[0].State != "running" {
		t.Errorf("blocks after restart %+v, want only the adopted PBS job %s, running", st.Blocks, pbsJob)
	}
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait: exit %d\n%s", code, testenv.Tail(d.Log(), 40))
	}
	count := 0
	for _, j := range openpbsJobs(t, env) {
		if strings.Contains(j.Name, label) {
			count++
		}
	}
	if count != 1 {
		t.Errorf("%d PBS jobs named after this run, want the one adopted block\n%s", count, openpbsQueue(env))
	}
	d.Stop()
	data, err := os.ReadFile(runsLog)
	if err != nil {
		t.Fatal(err)
	}
	runs := map[string]int{}
	for _, id := range strings.Fields(string(data)) {
		runs[id]++
	}
	again := 0
	for _, c := range runs {
		if c > 1 {
			again++
		}
	}
	if len(runs) != n || again != 0 {
		t.Errorf("%d distinct tasks ran (want %d), %d of them more than once (want 0: their pools survived)", len(runs), n, again)
	}
}

// TestOpenPBSSiteScriptsAccepted: `htexctl render` of every PBS site file
// gives a script the real qsub accepts as is (held with -h, so that none
// runs, then deleted). The test server defines what ALCF's files ask for
// and OpenPBS lacks: the custom resources filesystems and ngpus and the
// queue debug (scripts/pbs-cluster.sh).
func TestOpenPBSSiteScriptsAccepted(t *testing.T) {
	env := requireOpenPBS(t)
	bin := testenv.Binary(t)
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "sites", "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), `kind = "pbs"`) {
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			out, errOut, code := testenv.RunBin(bin, []string{"HTEX_RUN_DIR=" + t.TempDir()}, "render", "--config", f)
			if code != 0 {
				t.Fatalf("render: exit %d: %s", code, errOut)
			}
			script := filepath.Join(t.TempDir(), "submit.sh")
			if err := os.WriteFile(script, []byte(out), 0o600); err != nil {
				t.Fatal(err)
			}
			qsubOut, err := openpbsCmd(env, "qsub", "-h", script)
			id := strings.TrimSpace(qsubOut)
			if err != nil || !strings.HasSuffix(id, ".pbshost") {
				t.Fatalf("qsub refused the rendered script: %v: %s\n%s", err, qsubOut, out)
			}
			openpbsCmd(env, "qdel", id)
		})
		checked++
	}
	if checked < 3 {
		t.Errorf("checked %d PBS site files, want at least polaris, aurora and pbs-generic", checked)
	}
}

// TestOpenPBSGenericSite runs sites/pbs-generic.toml itself on the test
// server, changed only where the file says CHANGE (the node's CPUs), to
// two-node blocks and with mpiprocs=2 (each host twice in $PBS_NODEFILE):
// its launcher starts exactly one pool per node and tasks run.
func TestOpenPBSGenericSite(t *testing.T) {
	env := requireOpenPBS(t)
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "sites", "pbs-generic.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(data)
	for _, r := range [][2]string{
		{"cpus_per_node = 64\n", "cpus_per_node = 2\n"},
		{"nodes_per_block = 1\n", "nodes_per_block = 2\n"},
		{"max_blocks = 10\n", "max_blocks = 1\n"},
		// Each host twice in $PBS_NODEFILE: still one pool per node.
		{"# select_options = \"ngpus=4\"\n", "select_options = \"mpiprocs=2\"\n"},
		{"[executor]\n", "[executor]\nheartbeat_period = 1\n"},
	} {
		if !strings.Contains(cfg, r[0]) {
			t.Fatalf("sites/pbs-generic.toml no longer has %q", r[0])
		}
		cfg = strings.Replace(cfg, r[0], r[1], 1)
	}
	d := startOpenPBSDaemon(t, env, cfg)
	job := d.Submit("--array", "1-20", "--", "sh", "-c", `echo "$HTEX_NODE_NAME"`)
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait: exit %d\n%s\n%s", code, testenv.Tail(d.Log(), 40), slurmBlockStderr(d))
	}
	nodes := map[string]bool{}
	for _, r := range d.Results(job) {
		if r.State != "succeeded" || strings.TrimSpace(r.Stdout) != r.Node || !slices.Contains(openpbsNodes, r.Node) {
			t.Errorf("task %d: state %s node %q stdout %q", r.TaskID, r.State, r.Node, r.Stdout)
		}
		nodes[r.Node] = true
	}
	if script, err := os.ReadFile(filepath.Join(d.RunDir, "blocks", "1", "submit.sh")); err != nil ||
		!strings.Contains(string(script), "#PBS -l select=2:ncpus=2:mpiprocs=2\n") {
		t.Errorf("block 1's script (%v) does not ask for select=2:ncpus=2:mpiprocs=2:\n%s", err, script)
	}
	st := d.Status()
	if len(st.Pools) != 2 || len(st.Blocks) != 1 {
		t.Errorf("pools %+v blocks %+v: want one block with a pool on each of its two nodes", st.Pools, st.Blocks)
	}
	t.Logf("tasks ran on %v", nodes)
}
