package e2e

// Nothing lost when the daemon dies: kill -9 the daemon while tasks run,
// start it again on the same run directory, and check from the tasks' own
// record of their runs and from the journal that every task ended exactly
// once (or, where a pool was lost, that the journal holds the lost attempt),
// that the running block was adopted rather than submitted again, and that
// every acknowledged submission survived.

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
	"github.com/htex/htex/journal"
)

// resumeLocalConfig: one local block whose pool has 2 slots and holds up
// to 4 more tasks (prefetch), so that at any moment some tasks run, some
// wait in the pool and some results are on their way. heartbeat_threshold
// leaves the pool ample time to find the restarted daemon.
const resumeLocalConfig = `
[executor]
max_workers_per_node = 2
cores_per_worker = 0.01
prefetch_capacity = 4
heartbeat_period = 1
heartbeat_threshold = 60
[provider]
kind = "local"
`

type resumeStatus = testenv.Status

func resumeStatusOf(t *testing.T, d *testenv.Daemon) resumeStatus {
	t.Helper()
	return d.Status()
}

// resumeWait polls status until cond holds; limit is a generous deadline
// against a hang, not a measure of speed.
func resumeWait(t *testing.T, d *testenv.Daemon, what string, limit time.Duration, cond func(resumeStatus) bool) resumeStatus {
	t.Helper()
	return d.WaitStatus(what, limit, cond)
}

// resumeRuns reads the log the tasks append their HTEX_TASK_ID to: how many
// times each task ran.
func resumeRuns(t *testing.T, path string) map[int64]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	runs := map[int64]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		id, err := strconv.ParseInt(strings.TrimSpace(sc.Text()), 10, 64)
		if err != nil {
			t.Fatalf("%s: bad line %q", path, sc.Text())
		}
		runs[id]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return runs
}

// resumeCheckOnce opens the journal of a stopped daemon and checks every
// task of the job: it succeeded; it ran (by the tasks' log) once plus once
// per lost attempt the journal records; results.attempts counts them all;
// and every row of attempts is a lost one. It returns the number of tasks
// that ran more than once.
func resumeCheckOnce(t *testing.T, d *testenv.Daemon, job string, n int, runsLog string) (again int) {
	t.Helper()
	jobID, _ := strconv.ParseInt(job, 10, 64)
	runs := resumeRuns(t, runsLog)
	j, err := journal.Open(filepath.Join(d.RunDir, "htex.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	rows, err := j.Rows(jobID, 0, n+1)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != n {
		t.Fatalf("journal: job %s has %d tasks, want %d", job, len(rows), n)
	}
	bad := 0
	for _, row := range rows {
		id := row.Task.ID
		if row.Result == nil || row.Result.State != "succeeded" {
			t.Errorf("task %d: result %+v, want succeeded", id, row.Result)
			bad++
			continue
		}
		atts, err := j.Attempts(id)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range atts {
			if a.State != "lost" {
				t.Errorf("task %d: attempt %d ended %q; the attempts table should hold only lost attempts, the result the final one", id, a.Attempt, a.State)
			}
		}
		if runs[id] != 1+len(atts) || row.Result.Attempts != 1+len(atts) {
			t.Errorf("task %d ran %d times; the journal records %d lost attempts and results.attempts = %d (pool %s, block %d)",
				id, runs[id], len(atts), row.Result.Attempts, row.Result.PoolID, row.Result.BlockID)
			bad++
		}
		if runs[id] > 1 {
			again++
		}
		if bad > 20 {
			t.Fatalf("giving up after %d bad tasks", bad)
		}
	}
	return again
}

// TestResumeAfterKill9: the daemon is killed with SIGKILL while 2,000
// short tasks are in flight on local blocks; started again on the same run
// directory, it binds the same ports, each block's pool (which kept its
// tasks) registers again, the blocks are adopted, not submitted again, and
// every task ends succeeded, run exactly once. With two blocks, the first
// pool back must not be handed the tasks the other still holds, even when
// the other comes back late (it is stopped with SIGSTOP across the restart).
func TestResumeAfterKill9(t *testing.T) {
	testenv.Integration(t)
	for _, c := range []struct {
		blocks int
		late   bool
	}{{1, false}, {2, false}, {2, true}} {
		name := fmt.Sprintf("%d blocks", c.blocks)
		if c.late {
			name += ", one pool late"
		}
		t.Run(name, func(t *testing.T) {
			resumeAfterKill9(t, strings.Replace(resumeLocalConfig, `kind = "local"`,
				fmt.Sprintf("kind = \"local\"\ninit_blocks = %d\nmax_blocks = %d", c.blocks, c.blocks), 1), c.blocks, c.late)
		})
	}
}

func resumeAfterKill9(t *testing.T, config string, blocks int, late bool) {
	d := testenv.StartDaemon(t, config)
	runsLog := filepath.Join(t.TempDir(), "runs")
	const n = 2000
	// Kill at a random point of the run, once every pool is busy. The 8
	// tasks from there on take 3 s, so that the pools still run or hold
	// some when they register with the new daemon.
	killAt := int64(100 + rand.IntN(n/2))
	job := d.Submit("--array", "1-2000", "--shell", "--", fmt.Sprintf(
		"echo $HTEX_TASK_ID >> %s; if [ {} -ge %d ] && [ {} -lt %d ]; then sleep 3; else sleep 0.01; fi", runsLog, killAt+2, killAt+10))
	before := resumeWait(t, d, fmt.Sprintf("%d tasks done", killAt), 5*time.Minute, func(st resumeStatus) bool {
		return st.Succeeded >= killAt && len(st.Pools) == blocks
	})
	conn := secConnection(t, d.RunDir)
	pids := secProcesses(t, "worker", d.RunDir)
	if len(pids) != blocks {
		t.Fatalf("want %d pool processes, found %v", blocks, pids)
	}
	if late {
		// The last pool freezes with the tasks it holds and comes back
		// only after the first has registered with the new daemon.
		syscall.Kill(pids[len(pids)-1], syscall.SIGSTOP)
		t.Cleanup(func() { syscall.Kill(pids[len(pids)-1], syscall.SIGCONT) })
	}
	d.Kill9()
	t.Logf("killed the daemon after %d of %d tasks", before.Succeeded, n)

	d.Start()
	if late {
		resumeWait(t, d, "the first pool to register again", time.Minute, func(st resumeStatus) bool { return len(st.Pools) == 1 })
		time.Sleep(4 * time.Second) // the time to hand it the late pool's tasks, were it wrong to
		syscall.Kill(pids[len(pids)-1], syscall.SIGCONT)
	}
	after := secConnection(t, d.RunDir)
	if after["client_port"] != conn["client_port"] || after["worker_port"] != conn["worker_port"] {
		t.Errorf("restarted on ports %v/%v, want the previous %v/%v", after["client_port"], after["worker_port"], conn["client_port"], conn["worker_port"])
	}
	// The pools kept running and register again under their ids; the
	// blocks are adopted, not submitted again.
	st := resumeWait(t, d, "the pools to register again", time.Minute, func(st resumeStatus) bool { return len(st.Pools) == blocks })
	if got, want := resumePoolIDs(st), resumePoolIDs(before); got != want {
		t.Errorf("pools after restart %s, want the surviving %s", got, want)
	}
	for _, pid := range pids {
		if bbProcGone(pid) {
			t.Errorf("pool process %d did not survive the restart", pid)
		}
	}
	if got, want := resumeBlocks(st), resumeBlocks(before); got != want || strings.Count(got, "running") != blocks {
		t.Errorf("blocks after restart %s, want %s, all running", got, want)
	}
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait %s: exit %d\n%s", job, code, testenv.Tail(d.Log(), 40))
	}
	if now := secProcesses(t, "worker", d.RunDir); fmt.Sprint(now) != fmt.Sprint(pids) {
		t.Errorf("pool processes after the job: %v, want the first ones, %v", now, pids)
	}
	for _, f := range []string{"blocks/1/stderr", "blocks/2/stderr"} {
		if b, err := os.ReadFile(filepath.Join(d.RunDir, f)); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, "register again") {
					t.Logf("%s: %s", f, line)
				}
			}
		}
	}
	d.Stop()

	if again := resumeCheckOnce(t, d, job, n, runsLog); again != 0 {
		t.Errorf("%d tasks ran again although their pools survived", again)
	}
	j, err := journal.Open(filepath.Join(d.RunDir, "htex.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	jb, err := j.Blocks(false)
	if err != nil {
		t.Fatal(err)
	}
	if len(jb) != blocks {
		t.Errorf("journal blocks %+v, want only the %d of the first daemon", jb, blocks)
	}
	jp, err := j.Pools(false)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range jp {
		ids = append(ids, p.ID)
	}
	sort.Strings(ids)
	if got := strings.Join(ids, ","); got != resumePoolIDs(before) {
		t.Errorf("journal pools %s, want only %s", got, resumePoolIDs(before))
	}
}

func resumePoolIDs(st resumeStatus) string {
	var ids []string
	for _, p := range st.Pools {
		ids = append(ids, p.ID)
	}
	sort.Strings(ids)
	return strings.Join(ids, ",")
}

// resumeBlocks is "id:job:state" of each block, in id order.
func resumeBlocks(st resumeStatus) string {
	var bs []string
	for _, b := range st.Blocks {
		bs = append(bs, fmt.Sprintf("%d:%s:%s", b.ID, b.JobID, b.State))
	}
	sort.Strings(bs)
	return strings.Join(bs, " ")
}

// TestResumeSubmitCrashSafe: the daemon is killed with SIGKILL at a random
// moment while clients submit 50,000-task jobs; every job whose submit
// printed an id has all its tasks in the journal, the journal opens and
// passes integrity_check, and the restarted daemon has every task queued.
func TestResumeSubmitCrashSafe(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, secNoBlockConfig)
	const n = 50000
	file := filepath.Join(t.TempDir(), "cmds")
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "echo %d\n", i)
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	// Two clients submit back to back until the daemon dies; a submit cut
	// off by the kill is killed too (it would wait for its timeout).
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var acked, cut []string
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				cmd := exec.CommandContext(ctx, d.Bin, "submit", "--run-dir", d.RunDir, "--file", file)
				var out, errb strings.Builder
				cmd.Stdout, cmd.Stderr = &out, &errb
				err := cmd.Run()
				mu.Lock()
				if err == nil {
					acked = append(acked, strings.TrimSpace(out.String()))
				} else {
					cut = append(cut, fmt.Sprintf("%v %s", err, strings.TrimSpace(errb.String())))
				}
				mu.Unlock()
			}
		}()
	}
	// Kill at a random moment; the submits are back to back, so one is
	// almost surely in flight.
	time.Sleep(time.Duration(500+rand.IntN(3000)) * time.Millisecond)
	d.Kill9()
	cancel()
	wg.Wait()
	t.Logf("killed with %d submits acknowledged; cut off: %q", len(acked), cut)

	// The journal as the killed daemon left it.
	j, err := journal.Open(filepath.Join(d.RunDir, "htex.db"))
	if err != nil {
		t.Fatalf("the journal does not open after kill -9: %v", err)
	}
	if err := j.IntegrityCheck(); err != nil {
		t.Fatalf("integrity_check: %v", err)
	}
	counts, err := j.JobCounts()
	if err != nil {
		t.Fatal(err)
	}
	total := map[int64]int64{}
	var all int64
	for _, c := range counts {
		total[c.JobID] = c.Total
		all += c.Total
	}
	for _, job := range acked {
		id, err := strconv.ParseInt(job, 10, 64)
		if err != nil {
			t.Fatalf("submit printed %q, not a job id", job)
		}
		if total[id] != n {
			t.Errorf("job %d was acknowledged but the journal holds %d of its %d tasks", id, total[id], n)
		}
	}
	j.Close()

	// The restarted daemon knows every journaled task.
	d.Start()
	st := resumeStatusOf(t, d)
	if st.Queued != all {
		t.Errorf("after restart %d tasks queued, the journal holds %d", st.Queued, all)
	}
	for _, job := range acked {
		if rs := d.Results(job); len(rs) != n {
			t.Errorf("job %s: %d results rows, want %d", job, len(rs), n)
		}
	}
}

// TestResumeAdoptsSlurmBlock: a Slurm block that keeps running while the
// daemon is killed is adopted by the restarted daemon, not submitted again,
// and its pool finishes the job with every task run once.
func TestResumeAdoptsSlurmBlock(t *testing.T) {
	requireSlurm(t)
	label := fmt.Sprintf("resume%d", rand.IntN(1_000_000))
	d := testenv.StartDaemon(t, `
[executor]
label = "`+label+`"
max_workers_per_node = 2
cores_per_worker = 1
prefetch_capacity = 2
heartbeat_period = 1
heartbeat_threshold = 60
[provider]
kind = "slurm"
partition = "debug"
exclusive = false
launcher = "srun"
nodes_per_block = 1
init_blocks = 1
max_blocks = 1
walltime = "00:10:00"
cmd_timeout = 30
[strategy]
period = 1
`)
	runsLog := filepath.Join(t.TempDir(), "runs")
	const n = 300
	killAt := int64(20 + rand.IntN(n/2))
	job := d.Submit("--array", "1-300", "--shell", "--", fmt.Sprintf(
		"echo $HTEX_TASK_ID >> %s; if [ {} -ge %d ] && [ {} -lt %d ]; then sleep 3; else sleep 0.02; fi", runsLog, killAt+2, killAt+6))
	before := resumeWait(t, d, fmt.Sprintf("%d tasks done on the Slurm block", killAt), 5*time.Minute, func(st resumeStatus) bool {
		return st.Succeeded >= killAt && len(st.Pools) == 1 && len(st.Blocks) == 1
	})
	slurmJob := before.Blocks[0].JobID
	d.Kill9()
	t.Logf("killed the daemon after %d of %d tasks; Slurm job %s", before.Succeeded, n, slurmJob)
	if state := resumeSqueueState(t, slurmJob); state != "R" {
		t.Fatalf("Slurm job %s is %q after the daemon died, want R (running)", slurmJob, state)
	}

	d.Start()
	st := resumeWait(t, d, "the pool to register again", time.Minute, func(st resumeStatus) bool { return len(st.Pools) == 1 })
	if st.Pools[0].ID != before.Pools[0].ID {
		t.Errorf("pool after restart %q, want the surviving %q", st.Pools[0].ID, before.Pools[0].ID)
	}
	if len(st.Blocks) != 1 || st.Blocks[0].ID != before.Blocks[0].ID || st.Blocks[0].JobID != slurmJob {
		t.Errorf("blocks after restart %+v, want only block %d (Slurm job %s)", st.Blocks, before.Blocks[0].ID, slurmJob)
	}
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait %s: exit %d\n%s\n%s", job, code, testenv.Tail(d.Log(), 40), slurmQueue())
	}
	if n := resumeSlurmJobs(t, label); n != 1 {
		t.Errorf("%d Slurm jobs named after this run, want the one adopted block\n%s", n, slurmQueue())
	}
	d.Stop()
	if again := resumeCheckOnce(t, d, job, n, runsLog); again != 0 {
		t.Errorf("%d tasks ran again although their pool survived", again)
	}
	j, err := journal.Open(filepath.Join(d.RunDir, "htex.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if blocks, _ := j.Blocks(false); len(blocks) != 1 || blocks[0].JobID != slurmJob {
		t.Errorf("journal blocks %+v, want only Slurm job %s", blocks, slurmJob)
	}
}

// resumeSqueueState is a Slurm job's compact state (R, PD, CG...), "" when
// squeue no longer lists it.
func resumeSqueueState(t *testing.T, jobID string) string {
	t.Helper()
	out, err := exec.Command("squeue", "-h", "-j", jobID, "-o", "%t").CombinedOutput()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// resumeSlurmJobs counts the Slurm jobs (in any state squeue still shows)
// whose name carries the label.
func resumeSlurmJobs(t *testing.T, label string) int {
	t.Helper()
	out, err := exec.Command("squeue", "-h", "-t", "all", "-o", "%j").CombinedOutput()
	if err != nil {
		t.Fatalf("squeue: %v\n%s", err, out)
	}
	n := 0
	for _, name := range strings.Fields(string(out)) {
		if strings.Contains(name, label) {
			n++
		}
	}
	return n
}

// TestResumeSameWorkerPortInRange: with executor.worker_port_range, the
// restarted daemon binds the worker port it had, not the first free port of
// the range, so that the pools of the killed daemon find it again. The
// first port of the range is held by another listener while the first
// daemon starts, then freed before the restart.
func TestResumeSameWorkerPortInRange(t *testing.T) {
	testenv.Integration(t)
	var hold net.Listener
	var lo int
	for range 20 { // a free port with a free neighbour
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		lo = l.Addr().(*net.TCPAddr).Port
		if lo < 65000 {
			if l2, err := net.Listen("tcp", fmt.Sprintf(":%d", lo+1)); err == nil {
				l2.Close()
				hold = l
				break
			}
		}
		l.Close()
	}
	if hold == nil {
		t.Fatal("found no two free neighbouring ports")
	}
	config := strings.Replace(secNoBlockConfig, "[executor]", fmt.Sprintf("[executor]\nworker_port_range = [%d, %d]", lo, lo+1), 1)
	d := testenv.StartDaemon(t, config)
	hold.Close()
	port := secConnection(t, d.RunDir)["worker_port"]
	if port != float64(lo+1) {
		t.Fatalf("worker port %v, want %d (the first of the range is taken)", port, lo+1)
	}
	pool := exec.Command(d.Bin, "worker", "--run-dir", d.RunDir, "--block-id", "3")
	if err := pool.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Process.Kill(); pool.Wait() })
	resumeWait(t, d, "the pool to register", time.Minute, func(st resumeStatus) bool { return len(st.Pools) == 1 })

	d.Kill9()
	d.Start()
	if got := secConnection(t, d.RunDir)["worker_port"]; got != port {
		t.Errorf("restarted on worker port %v, want the previous %v", got, port)
	}
	resumeWait(t, d, "the pool to register again", time.Minute, func(st resumeStatus) bool { return len(st.Pools) == 1 })
	job := d.Submit("--", "true")
	if code := d.WaitJob(job); code != 0 {
		t.Errorf("wait: exit %d", code)
	}
}
