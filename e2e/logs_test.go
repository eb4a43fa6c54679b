package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/htex/htex/internal/testenv"
)

// taskOf returns the task id of a job's task with the given array index
// (-1: the job's only task, without one).
func taskOf(t *testing.T, d *testenv.Daemon, job string, index int64) string {
	t.Helper()
	rs := d.Results(job)
	for _, r := range rs {
		if (r.ArrayIndex != nil && *r.ArrayIndex == index) || (index < 0 && len(rs) == 1) {
			return strconv.FormatUint(uint64(r.TaskID), 10)
		}
	}
	t.Fatalf("job %s has no task of index %d", job, index)
	return ""
}

// bbRunIn runs a verb against the daemon from the directory dir.
func bbRunIn(t *testing.T, d *testenv.Daemon, dir string, args ...string) (string, string, int) {
	t.Helper()
	return bbRun(t, d, dir, "", args...)
}

// TestLogsExactBytes: `logs JOB TASK` gives a task's stdout and stderr byte
// for byte, from its --stdout/--stderr files and from the kept tails;
// --failed lists the failed tasks with their first lines.
func TestLogsExactBytes(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, localConfig)
	dir := t.TempDir()
	// relative paths: made absolute against the submitting directory
	script := `printf 'o{}\000\377x\n'; printf 'e{}\nline2\nline3' >&2; [ {} -ne 2 ] || exit 5`
	if err := os.MkdirAll(filepath.Join(dir, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := bbRunIn(t, d, dir, "submit", "--array", "1-3", "--stdout", "files/out.{}", "--stderr", "files/err.{}", "--", "sh", "-c", script)
	if code != 0 {
		t.Fatalf("submit: exit %d: %s %s", code, out, errOut)
	}
	filesJob := strings.TrimSpace(out)
	d.WaitJob(filesJob)
	t.Run("files", func(t *testing.T) {
		task := taskOf(t, d, filesJob, 1)
		stdout, stderr, code := d.Run("logs", filesJob, task)
		if code != 0 {
			t.Fatalf("logs: exit %d: %s", code, stderr)
		}
		if want := "o1\x00\xffx\n"; stdout != want {
			t.Errorf("stdout %q, want %q", stdout, want)
		}
		if want := "e1\nline2\nline3"; stderr != want {
			t.Errorf("stderr %q, want %q", stderr, want)
		}
		file, _ := os.ReadFile(filepath.Join(dir, "files", "out.1"))
		if string(file) != stdout {
			t.Errorf("the file holds %q, logs gave %q", file, stdout)
		}
		only, _, _ := d.Run("logs", "--stream", "stderr", filesJob, task)
		if only != "" {
			t.Errorf("--stream stderr wrote %q to stdout", only)
		}
	})
	t.Run("failed", func(t *testing.T) {
		stdout, stderr, code := d.Run("logs", "--failed", "--lines", "2", filesJob)
		if code != 0 {
			t.Fatalf("logs --failed: exit %d: %s", code, stderr)
		}
		task := taskOf(t, d, filesJob, 2)
		want := "task " + task + " (failed, exit 5, node "
		if !strings.HasPrefix(stdout, want) {
			t.Errorf("logs --failed:\n%s\nwant it to start with %q", stdout, want)
		}
		for _, line := range []string{"  stdout: o2\x00\xffx\n", "  stderr: e2\n  stderr: line2\n  stderr: ... (1 more lines)\n"} {
			if !strings.Contains(stdout, line) {
				t.Errorf("logs --failed lacks %q:\n%q", line, stdout)
			}
		}
		if strings.Contains(stdout, "o1") || strings.Contains(stdout, "o3") {
			t.Errorf("logs --failed shows succeeded tasks:\n%s", stdout)
		}
	})
	t.Run("tails", func(t *testing.T) {
		big := `head -c 100000 /dev/zero | tr '\000' a; printf 'END\n'; printf 'err\000\377' >&2`
		job := d.Submit("--", "sh", "-c", big)
		d.WaitJob(job)
		task := taskOf(t, d, job, -1)
		stdout, stderr, code := d.Run("logs", job, task)
		if code != 0 {
			t.Fatalf("logs: exit %d: %s", code, stderr)
		}
		full := strings.Repeat("a", 100000) + "END\n"
		if want := full[len(full)-64<<10:]; stdout != want {
			t.Errorf("stdout: %d bytes ending %q, want the last %d bytes of the output", len(stdout), stdout[max(0, len(stdout)-10):], len(want))
		}
		if want := "err\x00\xff"; stderr != want {
			t.Errorf("stderr %q, want %q", stderr, want)
		}
	})
	t.Run("follow", func(t *testing.T) {
		out, errOut, code := bbRunIn(t, d, dir, "submit", "--stdout", "files/follow.out", "--", "sh", "-c", "for i in 1 2 3 4; do echo line $i; sleep 0.4; done")
		if code != 0 {
			t.Fatalf("submit: exit %d: %s", code, errOut)
		}
		job := strings.TrimSpace(out)
		task := taskOf(t, d, job, -1)
		stdout, stderr, code := d.Run("logs", "--follow", "--stream", "stdout", job, task)
		if code != 0 {
			t.Fatalf("logs --follow: exit %d: %s", code, stderr)
		}
		if want := "line 1\nline 2\nline 3\nline 4\n"; stdout != want {
			t.Errorf("logs --follow: %q, want %q", stdout, want)
		}
		tailJob := d.Submit("--", "true")
		_, stderr, code = d.Run("logs", "--follow", tailJob, taskOf(t, d, tailJob, -1))
		if code != 1 || !strings.Contains(stderr, "--follow reads the task's --stdout/--stderr files") {
			t.Errorf("--follow without files: exit %d, %q", code, stderr)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"logs", filesJob, "999999"}, 1, "has no task 999999"},
			{[]string{"logs", filesJob, "x"}, 2, `task id "x": want a positive integer`},
			{[]string{"logs", "--stream", "both2", filesJob}, 2, `--stream "both2"`},
			{[]string{"logs"}, 2, "want JOB [TASK]"},
			{[]string{"logs", "--failed", filesJob, "1"}, 2, "give no TASK"},
		} {
			_, stderr, code := d.Run(tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("%v: exit %d, %q; want exit %d with %q", tc.args, code, stderr, tc.code, tc.want)
			}
		}
	})
}
