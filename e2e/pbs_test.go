package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
)

// pbsEmulator is testdata/pbs-emulator built for one test: qsub, qstat,
// qdel, qrls and mpiexec in bin, its state in state, and a HOME of its own
// (the emulator starts jobs in $HOME, as PBS does).
type pbsEmulator struct {
	bin, state, home string
}

// buildPBSEmulator builds the emulator into a temporary directory (as
// providers/pbs/emulator_test.go does) and links it under the names of the
// PBS commands.
func buildPBSEmulator(t *testing.T) *pbsEmulator {
	t.Helper()
	e := &pbsEmulator{bin: testenv.BuildPBSEmulator(t), state: t.TempDir(), home: t.TempDir()}
	// Registered before the daemon's own cleanup, so it runs after the
	// daemon has stopped (and qdel'ed its blocks).
	t.Cleanup(func() { e.drain(t) })
	return e
}

// env is the daemon's extra environment: the emulator first on PATH, so
// that the daemon's qsub/qstat/qdel and the jobs' mpiexec are the emulator's.
func (e *pbsEmulator) env() []string {
	return []string{
		"PATH=" + e.bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"PBS_EMULATOR_STATE=" + e.state,
		"PBS_EMULATOR_START_DELAY=300ms",
		"PBS_EMULATOR_KILL_DELAY=1s",
		"HOME=" + e.home,
	}
}

// command runs one emulator command with the emulator's environment.
func (e *pbsEmulator) command(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(e.bin, name), args...)
	cmd.Env = append(os.Environ(), e.env()...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// drain force-deletes the jobs still unfinished and waits for them to end,
// so that no job outlives the test or writes into a removed directory.
func (e *pbsEmulator) drain(t *testing.T) {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out, err := e.command(t, "qstat")
		if err != nil {
			t.Errorf("qstat: %v\n%s", err, out)
			return
		}
		var ids []string
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 0 && strings.HasSuffix(f[0], ".emu-server") {
				ids = append(ids, f[0])
			}
		}
		if len(ids) == 0 {
			return
		}
		e.command(t, "qdel", append([]string{"-W", "force"}, ids...)...)
	}
	t.Errorf("PBS emulator jobs still unfinished after the test")
}

type pbsStatus = testenv.Status

// pbsWaitStatus polls the status until ok holds.
func pbsWaitStatus(t *testing.T, d *testenv.Daemon, what string, ok func(pbsStatus) bool) pbsStatus {
	t.Helper()
	return d.WaitStatus(what, 3*time.Minute, ok)
}

func pbsReadStatus(t *testing.T, d *testenv.Daemon) pbsStatus {
	t.Helper()
	return d.Status()
}

// emuNodes are the node names the emulator gives job <seq>.emu-server.
func emuNodes(jobID string, n int) []string {
	seq := strings.TrimSuffix(jobID, ".emu-server")
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("emu-node-%s-%d", seq, i))
	}
	return out
}

func pbsConfig(blocks int, strategy string) string {
	return fmt.Sprintf(`
[executor]
max_workers_per_node = 2
cores_per_worker = 0.01
heartbeat_period = 1
heartbeat_threshold = 5

[provider]
kind = "pbs"
nodes_per_block = 2
launcher = "mpiexec"
cpus_per_node = 2
walltime = "00:20:00"
init_blocks = %d
max_blocks = %d

[strategy]
kind = %q
period = 1
`, blocks, blocks, strategy)
}

// TestPBSTwoNodeBlock runs 500 tasks on one PBS block of two emulated nodes:
// qsub in the block folder, the job started in $HOME, mpiexec (PALS style)
// starting one pool per node, each pool naming its node after the
// HTEX_NODE_NAME that mpiexec gives its rank.
func TestPBSTwoNodeBlock(t *testing.T) {
	testenv.Integration(t)
	e := buildPBSEmulator(t)
	d := testenv.StartDaemonEnv(t, pbsConfig(1, "simple"), e.env()...)

	st := pbsWaitStatus(t, d, "two pools of block 1 registered", func(st pbsStatus) bool {
		return len(st.Pools) == 2 && len(st.Blocks) == 1 && st.Blocks[0].JobID != ""
	})
	blk := st.Blocks[0]
	wantNodes := emuNodes(blk.JobID, 2)
	var poolNodes []string
	for _, p := range st.Pools {
		poolNodes = append(poolNodes, p.Node)
		if p.BlockID != blk.ID || p.Slots != 2 {
			t.Errorf("pool %+v: want block %d and 2 slots", p, blk.ID)
		}
	}
	slices.Sort(poolNodes)
	if !slices.Equal(poolNodes, wantNodes) {
		t.Errorf("pools on nodes %v, want %v (the HTEX_NODE_NAME of each mpiexec rank)", poolNodes, wantNodes)
	}

	job := d.Submit("--array", "1-500", "--", "sh", "-c", `echo "task {} on $HTEX_NODE_NAME"`)
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait: exit %d\n%s", code, testenv.Tail(d.Log(), 60))
	}
	rs := d.Results(job)
	if len(rs) != 500 {
		t.Fatalf("got %d results, want 500", len(rs))
	}
	perNode := map[string]int{}
	for _, r := range rs {
		perNode[r.Node]++
		want := fmt.Sprintf("task %d on %s", *r.ArrayIndex, r.Node)
		if r.State != "succeeded" || r.ExitCode != 0 || r.Attempts != 1 || r.BlockID != blk.ID || strings.TrimSpace(r.Stdout) != want {
			t.Errorf("task %d: state %s exit %d attempts %d block %d node %q stdout %q, want %q",
				r.TaskID, r.State, r.ExitCode, r.Attempts, r.BlockID, r.Node, r.Stdout, want)
		}
	}
	var got []string
	for n := range perNode {
		got = append(got, n)
	}
	slices.Sort(got)
	if !slices.Equal(got, wantNodes) {
		t.Errorf("tasks ran on %v (%v), want both of %v", got, perNode, wantNodes)
	}

	// The block's files: the script qsub was given, and the job's output
	// in the block folder (the -o/-e paths), not in $HOME.
	blockDir := filepath.Join(d.RunDir, "blocks", strconv.FormatInt(blk.ID, 10))
	script, err := os.ReadFile(filepath.Join(blockDir, "submit.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"#PBS -l select=2:ncpus=2", "#PBS -l place=scatter", "#PBS -l walltime=00:20:00",
		`cd "$HTEX_BLOCK_DIR"`, `mpiexec -n 2 --ppn 1 ${PBS_NODEFILE:+--hostfile "$PBS_NODEFILE"}`,
	} {
		if !strings.Contains(string(script), line) {
			t.Errorf("submit.sh lacks %q:\n%s", line, script)
		}
	}
	if b, err := os.ReadFile(filepath.Join(blockDir, "stderr")); err != nil || !strings.Contains(string(b), "PBS job "+blk.JobID) {
		t.Errorf("block stderr (%v) does not name the job %s:\n%s", err, blk.JobID, b)
	}
	if ents, _ := os.ReadDir(e.home); len(ents) > 0 {
		var names []string
		for _, de := range ents {
			names = append(names, de.Name())
		}
		t.Errorf("the job left files in $HOME (its starting folder): %v", names)
	}
}

// TestPBSQdelLosesNoTask qdel's one of two running blocks while its pools
// run tasks: those tasks run again on the other block, and every task
// succeeds. The tasks wait for a gate file, so that exactly the tasks the
// qdel'ed block holds are interrupted, whatever the machine's speed.
func TestPBSQdelLosesNoTask(t *testing.T) {
	testenv.Integration(t)
	e := buildPBSEmulator(t)
	// strategy none: the two init blocks and nothing else, so the tasks of
	// the qdel'ed block can only finish on the other one.
	d := testenv.StartDaemonEnv(t, pbsConfig(2, "none"), e.env()...)
	pbsWaitStatus(t, d, "four pools (2 blocks x 2 nodes)", func(st pbsStatus) bool { return len(st.Pools) == 4 })

	gate := filepath.Join(t.TempDir(), "gate")
	job := d.Submit("--env", "GATE="+gate, "--array", "1-16", "--", "sh", "-c",
		`while [ ! -e "$GATE" ]; do sleep 0.05; done; echo done {}`)
	// 16 tasks, 8 slots: each block holds 4 tasks waiting at the gate.
	st := pbsWaitStatus(t, d, "both blocks running 4 tasks", func(st pbsStatus) bool {
		return len(st.Blocks) == 2 && st.Blocks[0].Busy == 4 && st.Blocks[1].Busy == 4
	})
	victim, survivor := st.Blocks[0], st.Blocks[1]
	if out, err := e.command(t, "qdel", victim.JobID); err != nil {
		t.Fatalf("qdel %s: %v\n%s", victim.JobID, err, out)
	}
	pbsWaitStatus(t, d, "the qdel'ed block cancelled", func(st pbsStatus) bool {
		for _, b := range st.Blocks {
			if b.ID == victim.ID {
				return b.State == "cancelled"
			}
		}
		return false
	})
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait: exit %d\n%s", code, testenv.Tail(d.Log(), 60))
	}
	rs := d.Results(job)
	if len(rs) != 16 {
		t.Fatalf("got %d results, want 16", len(rs))
	}
	retried := 0
	for _, r := range rs {
		if r.State != "succeeded" || strings.TrimSpace(r.Stdout) != fmt.Sprintf("done %d", *r.ArrayIndex) {
			t.Errorf("task %d: state %s error %q attempts %d stdout %q", r.TaskID, r.State, r.Error, r.Attempts, r.Stdout)
		}
		// No task could finish on the victim: the gate opened after it ended.
		if r.BlockID != survivor.ID {
			t.Errorf("task %d: finished on block %d, want %d (the victim %d ended with the gate closed)", r.TaskID, r.BlockID, survivor.ID, victim.ID)
		}
		if r.Attempts == 2 {
			retried++
		} else if r.Attempts != 1 {
			t.Errorf("task %d: %d attempts, want 1 or 2", r.TaskID, r.Attempts)
		}
	}
	if retried != 4 {
		t.Errorf("%d tasks have 2 attempts, want the 4 the qdel'ed block %d was running", retried, victim.ID)
	}
	final := pbsReadStatus(t, d)
	for _, b := range final.Blocks {
		if b.ID == survivor.ID && b.State != "running" {
			t.Errorf("block %d (%s): state %s, want running", b.ID, b.JobID, b.State)
		}
	}
}

// TestPBSRelativeRunDir starts the daemon with executor.run_dir given as a
// relative path and no --run-dir: PBS starts the job in $HOME, not where
// the daemon runs, so every path in the block script must be absolute.
func TestPBSRelativeRunDir(t *testing.T) {
	testenv.Integration(t)
	e := buildPBSEmulator(t)
	bin := testenv.Binary(t)
	base := t.TempDir()
	cfg := strings.Replace(pbsConfig(1, "simple"), "[executor]\n", "[executor]\nrun_dir = \"runs/rel\"\n", 1)
	if err := os.WriteFile(filepath.Join(base, "site.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(base, "runs", "rel")
	logPath := filepath.Join(base, "serve.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	serve := exec.Command(bin, "serve", "--config", "site.toml", "--stop-grace", "5s")
	serve.Dir = base
	serve.Env = append(os.Environ(), e.env()...)
	serve.Env = append(serve.Env, "HTEX_RUN_DIR=") // executor.run_dir counts only without it
	serve.Stdout, serve.Stderr = logf, logf
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	done := make(chan error, 1)
	go func() { done <- serve.Wait() }()
	env := append([]string{"HTEX_RUN_DIR=" + runDir}, e.env()...)
	t.Cleanup(func() {
		testenv.RunBin(bin, env, "stop", "--no-wait")
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			serve.Process.Kill()
			<-done
			t.Errorf("daemon did not stop within 30 s; killed it")
		}
	})
	readLog := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(runDir, "connection.json")); err == nil {
			break
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("daemon exited before it was ready: %v\n%s", err, readLog())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not ready in %s\n%s", runDir, readLog())
		}
	}

	out, errOut, code := testenv.RunBin(bin, env, "submit", "--array", "1-4", "--", "echo", "hi {}")
	if code != 0 {
		t.Fatalf("submit: exit %d: %s %s", code, out, errOut)
	}
	job := strings.TrimSpace(out)
	// Poll rather than `htexctl wait`: with a broken block the tasks would
	// wait forever; a failed block ends the test with its stderr instead.
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		out, errOut, code := testenv.RunBin(bin, env, "status", "--json")
		if code != 0 {
			t.Fatalf("status: exit %d: %s", code, errOut)
		}
		var st struct {
			Succeeded int `json:"succeeded"`
			Blocks    []struct {
				ID         int64  `json:"id"`
				State      string `json:"state"`
				Message    string `json:"message"`
				StderrPath string `json:"stderr_path"`
			} `json:"blocks"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status --json: %v\n%s", err, out)
		}
		if st.Succeeded == 4 {
			break
		}
		for _, b := range st.Blocks {
			if b.Message != "" {
				stderr, _ := os.ReadFile(b.StderrPath)
				t.Fatalf("block %d %s: %s\nstderr %s:\n%s\ndaemon log:\n%s", b.ID, b.State, b.Message, b.StderrPath, stderr, testenv.Tail(readLog(), 30))
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("tasks not done: %s\n%s", out, testenv.Tail(readLog(), 30))
		}
	}
	out, errOut, code = testenv.RunBin(bin, env, "results", "--json", job)
	if code != 0 {
		t.Fatalf("results: exit %d: %s", code, errOut)
	}
	var rs []testenv.Result
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("results --json: %v\n%s", err, out)
	}
	for _, r := range rs {
		if r.State != "succeeded" || strings.TrimSpace(r.Stdout) != fmt.Sprintf("hi %d", *r.ArrayIndex) {
			t.Errorf("task %d: %+v", r.TaskID, r)
		}
	}
	script, err := os.ReadFile(filepath.Join(runDir, "blocks", "1", "submit.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "#PBS -e " + filepath.Join(runDir, "blocks", "1", "stderr"); !strings.Contains(string(script), want) {
		t.Errorf("submit.sh lacks %q:\n%s", want, script)
	}
}

// alcfConfig is a Polaris-like PBS config: account, filesystems, the queue
// and the block size given.
func alcfConfig(queue string, nodes int, walltime string) string {
	return fmt.Sprintf(`
[executor]
label = "polaris"
max_workers_per_node = 1
heartbeat_period = 1
heartbeat_threshold = 5

[provider]
kind = "pbs"
account = "MyProject"
queue = %q
nodes_per_block = %d
walltime = %q
launcher = "mpiexec"
scheduler_options = "#PBS -l filesystems=home:eagle"
init_blocks = 1
max_blocks = 1

[strategy]
kind = "none"
period = 1
`, queue, nodes, walltime)
}

// TestPBSALCFRefusedBlock sends a 2-node block to Polaris's prod queue
// (10 nodes and more) on the emulator in ALCF strict mode: qsub refuses it
// with ALCF's words, and the daemon's status shows them on the block.
func TestPBSALCFRefusedBlock(t *testing.T) {
	testenv.Integration(t)
	e := buildPBSEmulator(t)
	d := testenv.StartDaemonEnv(t, alcfConfig("prod", 2, "01:00:00"), append(e.env(), "PBS_EMULATOR_STRICT=polaris")...)
	st := pbsWaitStatus(t, d, "block 1 refused by qsub", func(st pbsStatus) bool {
		return len(st.Blocks) > 0 && strings.Contains(st.Blocks[0].Message, "Job violates queue and/or server resource limits")
	})
	t.Logf("block: %s", st.Blocks[0].Message)
}

// TestPBSALCFVanishedBlock sends Polaris's prod queue a block that fits
// prod's own range but none of its execution queues (10 nodes for 24 h;
// small stops at 3 h): qsub accepts it, the job vanishes, and the daemon
// ends the block with a message that names the likely cause.
func TestPBSALCFVanishedBlock(t *testing.T) {
	testenv.Integration(t)
	e := buildPBSEmulator(t)
	d := testenv.StartDaemonEnv(t, alcfConfig("prod", 10, "24:00:00"), append(e.env(), "PBS_EMULATOR_STRICT=polaris")...)
	st := pbsWaitStatus(t, d, "block 1 ended as vanished", func(st pbsStatus) bool {
		return len(st.Blocks) > 0 && strings.Contains(st.Blocks[0].Message, "routing queue dropped it")
	})
	t.Logf("block: %+v", st.Blocks[0])
	if b := st.Blocks[0]; b.JobID == "" || !strings.Contains(b.Message, "before any pool registered") {
		t.Errorf("block %+v: want a job id and a failure before any pool registered", b)
	}
}
