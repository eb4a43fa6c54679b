package e2e

// Block scaling end to end, on the local provider: scale-out of a burst to
// max_blocks, scale-in of idle blocks after max_idletime down to
// min_blocks, simple vs htex_auto_scale, parallelism, the failed-block
// limit, and draining before a block's walltime with the work moving to a
// replacement. Every wait is on an observed state (status, a job's end,
// the scaler's decision counter) with a generous deadline; the checks on
// time compare timestamps the daemon recorded, never the test's own clock.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
	"github.com/htex/htex/journal"
	"github.com/htex/htex/rundir"
)

// scConfig is a local-provider config with one slot per block, a 1 s
// scaler period and fast heartbeats; provider and strategy add lines.
func scConfig(executor, provider, strategy string) string {
	return `
[executor]
max_workers_per_node = 1
cores_per_worker = 0.01
heartbeat_period = 1
heartbeat_threshold = 5
` + executor + `
[provider]
kind = "local"
` + provider + `
[strategy]
period = 1
` + strategy + "\n"
}

type (
	scBlock  = testenv.Block
	scPool   = testenv.Pool
	scStatus = testenv.Status
)

func scStatusOf(t *testing.T, d *testenv.Daemon) scStatus {
	t.Helper()
	return d.Status()
}

// scWaitStatus polls status until cond holds, for up to a generous two
// minutes.
func scWaitStatus(t *testing.T, d *testenv.Daemon, what string, cond func(scStatus) bool) scStatus {
	t.Helper()
	return d.WaitStatus(what, 2*time.Minute, cond)
}

var scDecisionRE = regexp.MustCompile(`decision #(\d+) at `)

// decision is the number of the scaler's last decision in a status.
func scDecision(t *testing.T, s scStatus) int {
	t.Helper()
	m := scDecisionRE.FindStringSubmatch(s.Scaler)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// scWaitDecisions waits until the scaler has made n more decisions.
func scWaitDecisions(t *testing.T, d *testenv.Daemon, n int) scStatus {
	t.Helper()
	from := scDecision(t, scStatusOf(t, d))
	return scWaitStatus(t, d, fmt.Sprintf("%d more scaler decisions after #%d", n, from), func(s scStatus) bool {
		return scDecision(t, s) >= from+n
	})
}

// scLiveBlocks are the blocks with a pool that is not draining.
func scLiveBlocks(s scStatus) []int64 {
	var ids []int64
	for _, p := range s.Pools {
		if !p.Draining && !slices.Contains(ids, p.BlockID) {
			ids = append(ids, p.BlockID)
		}
	}
	slices.Sort(ids)
	return ids
}

func scIdleCancelled(s scStatus) []int64 {
	var ids []int64
	for _, b := range s.Blocks {
		if b.Message == "cancelled: idle" {
			ids = append(ids, b.ID)
		}
	}
	return ids
}

// scStoppedJournal stops the daemon and opens its journal.
func scStoppedJournal(t *testing.T, d *testenv.Daemon) *journal.Journal {
	t.Helper()
	d.Stop()
	j, err := journal.Open(filepath.Join(d.RunDir, rundir.JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func scEvents(t *testing.T, j *journal.Journal, kind string) []journal.Event {
	t.Helper()
	rows, err := j.Events(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []journal.Event
	for _, r := range rows {
		if r.Event.Kind == kind {
			out = append(out, r.Event)
		}
	}
	return out
}

// scLastEnd is when the last task that ran on a block ended.
func scLastEnd(t *testing.T, j *journal.Journal, block int64) time.Time {
	t.Helper()
	rows, err := j.Rows(0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	for _, r := range rows {
		if r.Result != nil && r.Result.BlockID == block && r.Result.EndedAt.After(last) {
			last = r.Result.EndedAt
		}
	}
	return last
}

func scAllSucceededOnce(t *testing.T, rs []testenv.Result, want int) {
	t.Helper()
	if len(rs) != want {
		t.Fatalf("got %d results, want %d", len(rs), want)
	}
	for _, r := range rs {
		if r.State != "succeeded" || r.Attempts != 1 {
			t.Errorf("task %d: state %s, attempts %d, error %q (want succeeded at the first attempt)", r.TaskID, r.State, r.Attempts, r.Error)
		}
	}
}

// A burst of queued tasks scales out to max_blocks and no further; once
// the work is done the idle blocks are cancelled, each only after it was
// idle for max_idletime, down to min_blocks and no lower.
func TestScalingBurstOutThenIdleIn(t *testing.T) {
	testenv.Integration(t)
	t.Parallel()
	d := testenv.StartDaemon(t, scConfig("", "init_blocks = 1\nmin_blocks = 1\nmax_blocks = 3", `kind = "simple"`+"\nmax_idletime = 2"))
	job := d.Submit("--array", "1-200", "--", "sleep", "0.2")
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait: exit %d\n%s", code, testenv.Tail(d.Log(), 60))
	}
	rs := d.Results(job)
	scAllSucceededOnce(t, rs, 200)
	used := map[int64]int{}
	for _, r := range rs {
		used[r.BlockID]++
	}
	if len(used) != 3 {
		t.Errorf("tasks ran on blocks %v, want 3 blocks (max_blocks)", used)
	}

	scWaitStatus(t, d, "2 idle blocks cancelled", func(s scStatus) bool { return len(scIdleCancelled(s)) >= 2 })
	// Never below min_blocks: the last block outlives several decisions.
	s := scWaitDecisions(t, d, 3)
	if got := scIdleCancelled(s); len(got) != 2 {
		t.Errorf("blocks cancelled as idle: %v, want 2 (3 blocks, min_blocks 1)", got)
	}
	if live := scLiveBlocks(s); len(live) != 1 {
		t.Errorf("live blocks %v, want 1 (min_blocks)\n%s", live, s.Raw)
	}
	if len(s.Blocks) != 3 {
		t.Errorf("%d blocks submitted, want 3 (max_blocks)\n%s", len(s.Blocks), s.Raw)
	}
	if !strings.Contains(s.Scaler, "simple: tasks=0 ") || !strings.Contains(s.Scaler, "live=1 ") {
		t.Errorf("scaler line %q: want the numbers of an idle decision with 1 live block", s.Scaler)
	}
	log := d.Log()
	if !strings.Contains(log, "wanted=3 (min 1, max 3) submit=2") {
		t.Errorf("the daemon log has no decision to scale out by 2 blocks:\n%s", testenv.Tail(log, 60))
	}

	j := scStoppedJournal(t, d)
	scaler := scEvents(t, j, "scaler")
	if !slices.ContainsFunc(scaler, func(e journal.Event) bool { return strings.Contains(e.Message, "submit=2") }) {
		t.Errorf("no scale-out decision in the journal: %+v", scaler)
	}
	n := 0
	for _, e := range scEvents(t, j, "block_cancelled") {
		if e.Message != "cancelled: idle" {
			continue
		}
		n++
		last := scLastEnd(t, j, e.BlockID)
		if idle := e.At.Sub(last); idle < 2*time.Second {
			t.Errorf("block %d cancelled %s after its last task ended, before max_idletime 2s", e.BlockID, idle)
		}
	}
	if n != 2 {
		t.Errorf("%d idle cancellations in the journal, want 2", n)
	}
}

// simple scales in only once no work is left; htex_auto_scale cancels the
// surplus idle blocks while a long task still runs. Neither cancels the
// block that runs it.
func TestScalingInSimpleVsAutoScale(t *testing.T) {
	testenv.Integration(t)
	t.Parallel()
	for _, kind := range []string{"simple", "htex_auto_scale"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			d := testenv.StartDaemon(t, scConfig("", "init_blocks = 1\nmin_blocks = 1\nmax_blocks = 3",
				fmt.Sprintf("kind = %q\nmax_idletime = 2", kind)))
			cmds := filepath.Join(t.TempDir(), "cmds")
			if err := os.WriteFile(cmds, []byte("sleep 15\nsleep 0.5\nsleep 0.5\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			job := d.Submit("--file", cmds)
			if code := d.WaitJob(job); code != 0 {
				t.Fatalf("wait: exit %d\n%s", code, testenv.Tail(d.Log(), 60))
			}
			rs := d.Results(job)
			scAllSucceededOnce(t, rs, 3)
			long := rs[0] // the first line
			blocks := map[int64]bool{}
			for _, r := range rs {
				blocks[r.BlockID] = true
			}
			if len(blocks) < 2 {
				t.Fatalf("tasks ran on blocks %v: the scaler did not scale out for 3 tasks", blocks)
			}
			scWaitStatus(t, d, "2 idle blocks cancelled", func(s scStatus) bool { return len(scIdleCancelled(s)) >= 2 })

			j := scStoppedJournal(t, d)
			var longEnd time.Time
			rows, err := j.Rows(0, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				if int64(r.Task.ID) == int64(long.TaskID) {
					longEnd = r.Result.EndedAt
				}
			}
			var idle []journal.Event
			for _, e := range scEvents(t, j, "block_cancelled") {
				if e.Message == "cancelled: idle" {
					idle = append(idle, e)
				}
			}
			if len(idle) != 2 {
				t.Fatalf("%d blocks cancelled as idle, want 2: %+v", len(idle), idle)
			}
			for _, e := range idle {
				if e.BlockID == long.BlockID {
					t.Errorf("block %d, which ran the long task, was cancelled as idle", e.BlockID)
				}
				switch before := e.At.Before(longEnd); {
				case kind == "simple" && before:
					t.Errorf("simple cancelled block %d at %s, while work remained (the long task ended at %s)",
						e.BlockID, e.At.Format(time.StampMilli), longEnd.Format(time.StampMilli))
				case kind == "htex_auto_scale" && !before:
					t.Errorf("htex_auto_scale cancelled block %d only at %s, after the long task ended at %s; want the surplus idle blocks gone while it ran",
						e.BlockID, e.At.Format(time.StampMilli), longEnd.Format(time.StampMilli))
				}
				if at := scLastEnd(t, j, e.BlockID); !at.IsZero() && e.At.Sub(at) < 2*time.Second {
					t.Errorf("block %d cancelled %s after its last task, before max_idletime 2s", e.BlockID, e.At.Sub(at))
				}
			}
		})
	}
}

// parallelism 0.5 asks for half the blocks: 4 tasks on 1-slot blocks want
// ceil(4 × 0.5 / 1) = 2 blocks, although max_blocks is 4.
func TestScalingParallelism(t *testing.T) {
	testenv.Integration(t)
	t.Parallel()
	d := testenv.StartDaemon(t, scConfig("", "init_blocks = 1\nmin_blocks = 1\nmax_blocks = 4\nparallelism = 0.5", `kind = "simple"`))
	job := d.Submit("--array", "1-4", "--", "sleep", "3")
	s := scWaitStatus(t, d, "a decision that saw the 4 tasks", func(s scStatus) bool {
		return strings.Contains(s.Scaler, "tasks=4 ") && scDecision(t, s) >= 2 // #1 submits init_blocks
	})
	if !strings.Contains(s.Scaler, "parallelism=0.5") || !strings.Contains(s.Scaler, "wanted=2 ") {
		t.Errorf("scaler line %q: want parallelism=0.5 and wanted=2", s.Scaler)
	}
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait: exit %d\n%s", code, testenv.Tail(d.Log(), 60))
	}
	scAllSucceededOnce(t, d.Results(job), 4)
	s = scStatusOf(t, d)
	if len(s.Blocks) != 2 {
		t.Errorf("%d blocks submitted for 4 tasks at parallelism 0.5, want 2\n%s", len(s.Blocks), s.Raw)
	}
}

// Blocks whose script fails before any pool registers trip the failure
// limit: the daemon stops submitting and status says why, naming the
// failed block's stderr. Also checks the keys of status --json.
func TestScalingFailedBlocksHalt(t *testing.T) {
	testenv.Integration(t)
	t.Parallel()
	d := testenv.StartDaemon(t, scConfig("", "init_blocks = 1\nmin_blocks = 1\nmax_blocks = 1\nworker_init = \"exit 1\"",
		`kind = "simple"`+"\nmax_block_failures = 2"))
	const halt = "stopped submitting blocks after 2 failed in a row"
	scWaitStatus(t, d, "the failed-block limit", func(s scStatus) bool { return strings.Contains(s.Scaler, halt) })
	s := scWaitDecisions(t, d, 3) // and it stays so
	if len(s.Blocks) != 2 {
		t.Fatalf("%d blocks submitted, want 2 (max_block_failures)\n%s", len(s.Blocks), s.Raw)
	}
	for _, b := range s.Blocks {
		if b.State != "failed" {
			t.Errorf("block %d: state %q, want failed", b.ID, b.State)
		}
		if b.StderrPath == "" || !strings.Contains(b.Message, b.StderrPath) || !strings.Contains(b.Message, "before any pool registered") {
			t.Errorf("block %d: message %q does not say it failed before registering and name its stderr %q", b.ID, b.Message, b.StderrPath)
		}
		if _, err := os.Stat(b.StderrPath); err != nil {
			t.Errorf("block %d: %v", b.ID, err)
		}
	}
	last := s.Blocks[1]
	if !strings.Contains(s.Scaler, last.StderrPath) || !strings.Contains(s.Scaler, "exited with status 1") {
		t.Errorf("scaler line %q: want the last failed block's stderr %s and its exit status", s.Scaler, last.StderrPath)
	}
	if !strings.Contains(s.Scaler, "[halted") || !strings.Contains(s.Scaler, "submit=0") {
		t.Errorf("scaler line %q: want the decisions to show the halt and submit nothing", s.Scaler)
	}

	text := d.MustRun("status")
	for _, want := range []string{halt, last.StderrPath, "ENDS", "IDLE SINCE"} {
		if !strings.Contains(text, want) {
			t.Errorf("htexctl status lacks %q:\n%s", want, text)
		}
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(s.Raw), &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["scaler"]; !ok {
		t.Errorf("status --json has no scaler key")
	}
	for _, b := range raw["blocks"].([]any) {
		for _, k := range []string{"id", "job_id", "state", "nodes", "pools", "slots", "busy", "idle_since", "end_time", "message", "stderr_path"} {
			if _, ok := b.(map[string]any)[k]; !ok {
				t.Errorf("status --json block %v has no key %q", b, k)
			}
		}
	}

	j := scStoppedJournal(t, d)
	if ev := scEvents(t, j, "scaler_halted"); len(ev) != 1 || !strings.Contains(ev[0].Message, halt) {
		t.Errorf("journal scaler_halted scEvents: %+v, want one saying %q", ev, halt)
	}
}

// A block with walltime 40 s and drain_period 10 s: a task whose time
// limit does not fit the time the block has left waits; the block drains
// before its end, finishes the task it runs and ends; a replacement takes
// the waiting task and the tasks submitted late. Nothing is lost.
func TestScalingWalltimeDrain(t *testing.T) {
	testenv.Integration(t)
	t.Parallel()
	d := testenv.StartDaemon(t, scConfig("drain_period = 10",
		"init_blocks = 1\nmin_blocks = 0\nmax_blocks = 1\nwalltime = \"00:00:40\"", `kind = "simple"`))
	s := scWaitStatus(t, d, "the first block registered with its end time", func(s scStatus) bool {
		return len(s.Blocks) == 1 && s.Blocks[0].Pools == 1 && s.Blocks[0].EndTime != nil
	})
	first := s.Blocks[0].ID
	end, err := time.Parse(time.RFC3339, *s.Blocks[0].EndTime)
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(end); left <= 0 || left > 41*time.Second {
		t.Fatalf("block %d ends %s from now, want within its walltime of 40 s", first, left)
	}

	// A limit no block can run is refused at submit.
	if _, errOut, code := d.Run("submit", "--time-limit", "45s", "--", "true"); code != 2 || !strings.Contains(errOut, "walltime") {
		t.Errorf("submit --time-limit 45s with walltime 40s: exit %d, stderr %q; want 2 and a word on the walltime", code, errOut)
	}
	early := d.Submit("--array", "1-5", "--", "sleep", "0.2")
	if code := d.WaitJob(early); code != 0 {
		t.Fatalf("wait: exit %d", code)
	}

	// Once the block has less than 25 s + 5 s (the margin) left, a task
	// limited to 25 s does not fit it; a fresh block has 40 s.
	scWaitStatus(t, d, "the first block to have less than 29 s left", func(scStatus) bool { return time.Until(end) < 29*time.Second })
	limited := d.Submit("--time-limit", "25s", "--", "sleep", "1")
	running := d.Submit("--", "sleep", "22") // runs on the first block past its drain start
	runningLeft := time.Until(end)

	scWaitStatus(t, d, "the first block draining", func(s scStatus) bool {
		return slices.ContainsFunc(s.Pools, func(p scPool) bool { return p.BlockID == first && p.Draining })
	})
	late := d.Submit("--array", "1-5", "--", "sleep", "0.2")
	for _, job := range []string{limited, running, late} {
		if code := d.WaitJob(job); code != 0 {
			t.Fatalf("wait %s: exit %d\n%s", job, code, testenv.Tail(d.Log(), 60))
		}
	}
	for _, r := range d.Results(early) {
		if r.BlockID != first {
			t.Errorf("early task %d ran on block %d, want %d", r.TaskID, r.BlockID, first)
		}
	}
	rs := d.Results(limited)
	scAllSucceededOnce(t, rs, 1)
	if rs[0].BlockID == first {
		t.Errorf("the task limited to 25 s ran on block %d, which had less than 30 s left", first)
	}
	rs = d.Results(running)
	scAllSucceededOnce(t, rs, 1)
	if runningLeft > 11*time.Second && rs[0].BlockID != first {
		t.Errorf("the task submitted %s before block %d's end ran on block %d", runningLeft.Round(time.Millisecond), first, rs[0].BlockID)
	}
	rs = d.Results(late)
	scAllSucceededOnce(t, rs, 5)
	for _, r := range rs {
		if r.BlockID == first {
			t.Errorf("late task %d ran on the draining block %d", r.TaskID, first)
		}
	}
	s = scWaitStatus(t, d, "the first block to end", func(s scStatus) bool { return s.Blocks[0].State != "running" })
	if s.Blocks[0].State != "completed" {
		t.Errorf("block %d ended %q (%s), want completed: it should drain and exit on its own", first, s.Blocks[0].State, s.Blocks[0].Message)
	}
	if len(s.Blocks) != 2 {
		t.Errorf("%d blocks, want 2 (the first and its replacement)\n%s", len(s.Blocks), s.Raw)
	}

	j := scStoppedJournal(t, d)
	var drained time.Time
	for _, e := range scEvents(t, j, "pool_draining") {
		if e.BlockID == first {
			drained = e.At
		}
	}
	if drained.IsZero() || !drained.Before(end) {
		t.Errorf("block %d's pool drained at %v, want before the block's end %v", first, drained, end)
	}
	for _, e := range scEvents(t, j, "block_submitted") {
		if e.BlockID != first && e.At.Before(drained) {
			t.Errorf("the replacement block %d was submitted at %v, before block %d drained at %v", e.BlockID, e.At, first, drained)
		}
	}
}
