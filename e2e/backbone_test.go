package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
)

const localConfig = `
[executor]
max_workers_per_node = 2
cores_per_worker = 0.01
heartbeat_period = 1
heartbeat_threshold = 5
[provider]
kind = "local"
`

func TestSubmitWaitResults(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, localConfig)
	job := d.Submit("--array", "1-20", "--", "sh", "-c", "echo out {}; echo err {} >&2")
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait: exit %d\n%s", code, d.Log())
	}
	rs := d.Results(job)
	if len(rs) != 20 {
		t.Fatalf("got %d results, want 20", len(rs))
	}
	for _, r := range rs {
		if r.State != "succeeded" || r.ExitCode != 0 || r.Attempts != 1 || r.Node == "" {
			t.Errorf("task %d: %+v", r.TaskID, r)
		}
		want := "out " + strconv.FormatInt(*r.ArrayIndex, 10)
		if strings.TrimSpace(r.Stdout) != want || strings.TrimSpace(r.Stderr) != "err "+strconv.FormatInt(*r.ArrayIndex, 10) {
			t.Errorf("task %d: stdout %q stderr %q, want %q", r.TaskID, r.Stdout, r.Stderr, want)
		}
	}
}

// bbRunStdin runs a verb against the daemon with stdin; it returns stdout,
// stderr and the exit code.
func bbRunStdin(t *testing.T, d *testenv.Daemon, stdin string, args ...string) (string, string, int) {
	t.Helper()
	return bbRun(t, d, "", stdin, args...)
}

// bbRun runs a verb against the daemon from the directory dir ("" = this
// one) with stdin, within two minutes.
func bbRun(t *testing.T, d *testenv.Daemon, dir, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.Bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"HTEX_RUN_DIR=" + d.RunDir}, d.Env...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	case err != nil:
		t.Fatalf("htexctl %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), 0
}

// bbWaitFor polls cond until it holds, failing the test after deadline.
func bbWaitFor(t *testing.T, what string, deadline time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("gave up after %s waiting for %s", deadline, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// bbProcGone reports whether a process no longer runs: no /proc entry, or
// a zombie (dead, waiting for a parent that may never reap it).
func bbProcGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	st := s[i+2]
	return st == 'Z' || st == 'X'
}

// bbReadPid reads a pid a task wrote to a file.
func bbReadPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Fatalf("pid file %s: %q", path, b)
	}
	return pid
}

// bbOneLine checks that a verb failed with exit 2 and a single line on
// stderr that contains each of want.
func bbOneLine(t *testing.T, what, stdout, stderr string, code int, want ...string) {
	t.Helper()
	if code != 2 {
		t.Errorf("%s: exit %d, want 2\nstdout: %s\nstderr: %s", what, code, stdout, stderr)
	}
	msg := strings.TrimRight(stderr, "\n")
	if msg == "" || strings.Contains(msg, "\n") {
		t.Errorf("%s: want one line on stderr, got %q", what, stderr)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("%s: stderr %q does not name %q", what, msg, w)
		}
	}
}

func TestSubmitFileAndStdin(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, localConfig)
	lines := "echo one\n\n# a comment\n   \n  echo two; echo to-err >&2  \n\t# indented comment\necho \"idx=$HTEX_ARRAY_INDEX\" | tr a-z A-Z\n"
	want := []struct{ line, stdout, stderr string }{
		{"echo one", "one", ""},
		{"echo two; echo to-err >&2", "two", "to-err"},
		{"echo \"idx=$HTEX_ARRAY_INDEX\" | tr a-z A-Z", "IDX=2", ""},
	}
	check := func(t *testing.T, job string) {
		if code := d.WaitJob(job); code != 0 {
			t.Fatalf("wait: exit %d", code)
		}
		rs := d.Results(job)
		if len(rs) != len(want) {
			t.Fatalf("got %d tasks, want %d (blank and # lines skipped): %+v", len(rs), len(want), rs)
		}
		for i, r := range rs {
			w := want[i]
			if r.State != "succeeded" || strings.TrimSpace(r.Stdout) != w.stdout || strings.TrimSpace(r.Stderr) != w.stderr {
				t.Errorf("line %d: state %s stdout %q stderr %q, want stdout %q stderr %q", i, r.State, r.Stdout, r.Stderr, w.stdout, w.stderr)
			}
			if len(r.Argv) != 3 || r.Argv[0] != "/bin/sh" || r.Argv[1] != "-c" || r.Argv[2] != w.line {
				t.Errorf("line %d: argv %q, want [/bin/sh -c %q]", i, r.Argv, w.line)
			}
			if r.ArrayIndex == nil || *r.ArrayIndex != int64(i) {
				t.Errorf("line %d: array_index %v, want %d", i, r.ArrayIndex, i)
			}
		}
	}
	t.Run("file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "cmds.txt")
		if err := os.WriteFile(f, []byte(lines), 0o600); err != nil {
			t.Fatal(err)
		}
		check(t, d.Submit("--file", f))
	})
	t.Run("stdin", func(t *testing.T) {
		out, errOut, code := bbRunStdin(t, d, lines, "submit", "--file", "-")
		if code != 0 {
			t.Fatalf("submit --file -: exit %d: %s", code, errOut)
		}
		check(t, strings.TrimSpace(out))
	})
}

func TestSubmitArrayEnvCwd(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, localConfig)
	dir := t.TempDir()
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	job := d.Submit("--array", "3-6", "--env", "FOO=bar", "--env", "EQ=a=b", "--env", "EMPTY=", "--cwd", dir, "--",
		"sh", "-c", `echo "{} $HTEX_ARRAY_INDEX $FOO $EQ [$EMPTY] $(/bin/pwd -P)"`, "arg-{}-x")
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait: exit %d", code)
	}
	rs := d.Results(job)
	if len(rs) != 4 {
		t.Fatalf("got %d tasks, want 4 (3-6)", len(rs))
	}
	for i, r := range rs {
		idx := int64(3 + i)
		if r.ArrayIndex == nil || *r.ArrayIndex != idx {
			t.Errorf("task %d: array_index %v, want %d", r.TaskID, r.ArrayIndex, idx)
			continue
		}
		want := fmt.Sprintf("%d %d bar a=b [] %s", idx, idx, realDir)
		if got := strings.TrimSpace(r.Stdout); got != want {
			t.Errorf("task %d: stdout %q, want %q", r.TaskID, got, want)
		}
		if n := len(r.Argv); n == 0 || r.Argv[n-1] != fmt.Sprintf("arg-%d-x", idx) {
			t.Errorf("task %d: argv %q: {} not substituted in every argument", r.TaskID, r.Argv)
		}
	}

	// Without --cwd the task runs where submit ran.
	here, _ := os.Getwd()
	here, _ = filepath.EvalSymlinks(here)
	job = d.Submit("--", "/bin/pwd", "-P")
	d.WaitJob(job)
	if rs := d.Results(job); len(rs) != 1 || strings.TrimSpace(rs[0].Stdout) != here {
		t.Errorf("default cwd: %+v, want stdout %q", rs, here)
	}
}

func TestSubmitTimeoutKillsGroup(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, localConfig)
	pidFile := filepath.Join(t.TempDir(), "bg.pid")
	job := d.Submit("--timeout", "1s", "--", "sh", "-c", `sleep 300 & echo $! > `+pidFile+`; sleep 30`)
	if code := d.WaitJob(job); code != 1 {
		t.Fatalf("wait: exit %d, want 1 (a task failed)", code)
	}
	rs := d.Results(job)
	if len(rs) != 1 {
		t.Fatalf("got %d results", len(rs))
	}
	r := rs[0]
	if r.State != "failed" || r.ErrorKind != "timeout" || r.Attempts != 1 {
		t.Errorf("result %+v: want state failed, error_kind timeout, 1 attempt", r)
	}
	// The task sleeps 30 s: had the limit not been applied it would have
	// run that long.
	if r.Seconds >= 29 {
		t.Errorf("task ran %.1f s: its 1 s time limit was not applied", r.Seconds)
	}
	bg := bbReadPid(t, pidFile)
	bbWaitFor(t, fmt.Sprintf("the task's background process %d to be gone", bg), 30*time.Second, func() bool { return bbProcGone(bg) })
}

func TestSubmitWaitAndFailedTask(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, localConfig)

	out := d.MustRun("submit", "--wait", "--", "true")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "job "+lines[0]+": 1 succeeded, 0 failed of 1; ") {
		t.Errorf("submit --wait output %q: want the job id, then its summary", out)
	}
	if _, err := strconv.ParseUint(lines[0], 10, 64); err != nil {
		t.Errorf("submit --wait: first line %q is not a job id", lines[0])
	}

	out, _, code := d.Run("submit", "--wait", "--", "sh", "-c", "echo partial; exit 3")
	if code != 1 {
		t.Fatalf("submit --wait of a failing task: exit %d, want 1", code)
	}
	job := strings.SplitN(out, "\n", 2)[0]
	if code := d.WaitJob(job); code != 1 {
		t.Errorf("wait %s: exit %d, want 1", job, code)
	}
	rs := d.Results(job)
	if len(rs) != 1 || rs[0].State != "failed" || rs[0].ExitCode != 3 || rs[0].ErrorKind != "exit" || strings.TrimSpace(rs[0].Stdout) != "partial" {
		t.Errorf("results %+v: want state failed, exit_code 3, error_kind exit, stdout partial", rs)
	}

	// Every documented field is in results --json.
	raw := d.MustRun("results", "--json", job)
	var objs []map[string]any
	if err := json.Unmarshal([]byte(raw), &objs); err != nil || len(objs) != 1 {
		t.Fatalf("results --json: %v\n%s", err, raw)
	}
	for _, k := range []string{"task_id", "job_id", "state", "exit_code", "error_kind", "attempts", "block_id", "node", "stdout", "stderr", "seconds"} {
		if _, ok := objs[0][k]; !ok {
			t.Errorf("results --json lacks %q: %s", k, raw)
		}
	}
	if objs[0]["block_id"].(float64) < 0 || objs[0]["node"] == "" || objs[0]["seconds"].(float64) <= 0 {
		t.Errorf("results --json: where and how long it ran are missing: %s", raw)
	}
}

func TestOutputTailBounded(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, localConfig)
	// 1 MiB of numbered lines, so that a wrong window shows.
	var b strings.Builder
	for i := 0; b.Len() < 1<<20; i++ {
		fmt.Fprintf(&b, "line %07d of the output\n", i)
	}
	data := b.String()[:1<<20]
	f := filepath.Join(t.TempDir(), "big.txt")
	if err := os.WriteFile(f, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	job := d.Submit("--", "sh", "-c", "cat "+f+"; cat "+f+" >&2")
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait: exit %d", code)
	}
	rs := d.Results(job)
	want := data[len(data)-65536:]
	if len(rs) != 1 || rs[0].Stdout != want || rs[0].Stderr != want {
		t.Fatalf("want the last 65536 bytes of 1 MiB on stdout and stderr; got %d and %d bytes", len(rs[0].Stdout), len(rs[0].Stderr))
	}
}

func TestCancelJob(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, localConfig)
	dir := t.TempDir()
	job := d.Submit("--retries", "0", "--array", "1-5", "--", "sh", "-c", "echo $$ > "+dir+"/pid.{}.tmp && mv "+dir+"/pid.{}.tmp "+dir+"/pid.{} && exec sleep 300")
	started := func() []string {
		m, _ := filepath.Glob(filepath.Join(dir, "pid.?"))
		return m
	}
	bbWaitFor(t, "two tasks to run", 60*time.Second, func() bool { return len(started()) >= 2 })
	out := d.MustRun("cancel", job)
	if !strings.Contains(out, "cancelled") {
		t.Errorf("cancel printed %q", out)
	}
	if code := d.WaitJob(job); code != 1 {
		t.Errorf("wait after cancel: exit %d, want 1", code)
	}
	rs := d.Results(job)
	if len(rs) != 5 {
		t.Fatalf("got %d results, want 5", len(rs))
	}
	for _, r := range rs {
		if r.State != "cancelled" || r.ErrorKind != "cancelled" {
			t.Errorf("task %d: state %s error_kind %s, want cancelled", r.TaskID, r.State, r.ErrorKind)
		}
	}
	running := started()
	if len(running) < 2 {
		t.Fatalf("pid files %v", running)
	}
	for _, p := range running {
		pid := bbReadPid(t, p)
		bbWaitFor(t, fmt.Sprintf("cancelled task process %d to be gone", pid), 30*time.Second, func() bool { return bbProcGone(pid) })
	}
}

func TestTaskEnvironment(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, localConfig)
	job := d.Submit("--array", "1-4", "--", "sh", "-c", `echo "$HTEX_TASK_ID $HTEX_JOB_ID $HTEX_WORKER_RANK $HTEX_BLOCK_ID $HTEX_ARRAY_INDEX"`)
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait: exit %d", code)
	}
	for _, r := range d.Results(job) {
		f := strings.Fields(r.Stdout)
		if len(f) != 5 {
			t.Errorf("task %d: stdout %q: want 5 variables", r.TaskID, r.Stdout)
			continue
		}
		want := []string{strconv.FormatUint(r.TaskID, 10), strconv.FormatUint(r.JobID, 10), "", strconv.FormatInt(r.BlockID, 10), strconv.FormatInt(*r.ArrayIndex, 10)}
		for i, w := range want {
			if i == 2 {
				if f[2] != "0" && f[2] != "1" {
					t.Errorf("task %d: HTEX_WORKER_RANK %q, want 0 or 1 (2 slots)", r.TaskID, f[2])
				}
				continue
			}
			if f[i] != w {
				t.Errorf("task %d: variable %d is %q, want %q (stdout %q)", r.TaskID, i, f[i], w, r.Stdout)
			}
		}
		if r.BlockID < 0 {
			t.Errorf("task %d: block_id %d", r.TaskID, r.BlockID)
		}
	}
}

const oneSlotConfig = `
[executor]
max_workers_per_node = 1
cores_per_worker = 0.01
prefetch_capacity = 0
heartbeat_period = 1
heartbeat_threshold = 5
[provider]
kind = "local"
`

func TestSubmitPriority(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, oneSlotConfig)
	dir := t.TempDir()
	// The one slot is held until both jobs are queued.
	blocker := d.Submit("--", "sh", "-c", "touch "+dir+"/started; while [ ! -e "+dir+"/release ]; do sleep 0.05; done")
	bbWaitFor(t, "the blocker to run", 60*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(dir, "started"))
		return err == nil
	})
	order := filepath.Join(dir, "order")
	low := d.Submit("--priority", "1", "--array", "1-3", "--", "sh", "-c", "echo low{} >> "+order)
	def := d.Submit("--array", "1-2", "--", "sh", "-c", "echo default{} >> "+order)
	high := d.Submit("--priority", "5", "--array", "1-3", "--", "sh", "-c", "echo high{} >> "+order)
	if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, j := range []string{blocker, low, def, high} {
		if code := d.WaitJob(j); code != 0 {
			t.Fatalf("wait %s: exit %d", j, code)
		}
	}
	got, _ := os.ReadFile(order)
	want := "high1\nhigh2\nhigh3\nlow1\nlow2\nlow3\ndefault1\ndefault2\n"
	if string(got) != want {
		t.Errorf("run order:\n%s\nwant (higher priority first, then submission order):\n%s", got, want)
	}
}
