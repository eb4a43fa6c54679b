// Package testenv is the harness of htex's integration tests: it builds the
// real htexctl binary once per test process, starts daemons on temporary
// run directories, runs CLI verbs against them, and stops what it started by
// pid. It also decides when a test may skip: never in CI (CI=true), where a
// missing prerequisite is a failure.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var build struct {
	once sync.Once
	path string
	err  error
}

// InCI reports whether the tests run in CI, where nothing may skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// SkipOrFail skips the test on a developer machine, and fails it in CI.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("CI=true and a prerequisite is missing: %s", msg)
	}
	t.Skip(msg)
}

// Integration skips under -short (never in CI).
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() && !InCI() {
		t.Skip("integration test: skipped with -short")
	}
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// RepoRoot is the repository's top folder.
func RepoRoot() string { return repoRoot() }

// Binary builds htexctl once (with -race when the tests run with it) and
// returns its path. HTEX_TEST_BINARY overrides it with a prebuilt binary.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("HTEX_TEST_BINARY"); p != "" {
		return p
	}
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "htexctl-test-")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(dir, "htexctl")
		args := []string{"build", "-o", build.path}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/htexctl")...)
		cmd.Dir = repoRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// Daemon is a running `htexctl serve`.
type Daemon struct {
	t       testing.TB
	Bin     string
	RunDir  string
	Config  string
	LogPath string
	Env     []string
	cmd     *exec.Cmd
	done    chan error
}

// StartDaemon writes the config and starts a daemon on a new run directory.
func StartDaemon(t testing.TB, configTOML string) *Daemon {
	t.Helper()
	return StartDaemonEnv(t, configTOML)
}

// StartDaemonEnv is StartDaemon with extra K=V environment for the daemon
// from its first start (so for the blocks it submits, e.g. a PATH that puts
// a scheduler emulator first) and for the verbs Run runs.
func StartDaemonEnv(t testing.TB, configTOML string, env ...string) *Daemon {
	t.Helper()
	base := t.TempDir()
	d := &Daemon{t: t, Bin: Binary(t), RunDir: filepath.Join(base, "run"), Config: filepath.Join(base, "site.toml"),
		LogPath: filepath.Join(base, "serve.log"), Env: env}
	if err := os.WriteFile(d.Config, []byte(configTOML), 0o600); err != nil {
		t.Fatal(err)
	}
	d.Start()
	t.Cleanup(d.Stop)
	return d
}

// Start starts (or restarts) the daemon process and waits until it is ready.
func (d *Daemon) Start() {
	d.t.Helper()
	os.Remove(filepath.Join(d.RunDir, "connection.json"))
	logf, err := os.OpenFile(d.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	d.cmd = exec.Command(d.Bin, "serve", "--config", d.Config, "--run-dir", d.RunDir, "--stop-grace", "5s")
	d.cmd.Env = append(os.Environ(), d.Env...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	logf.Close()
	d.done = make(chan error, 1)
	cmd := d.cmd
	go func() { d.done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(d.RunDir, "connection.json")); err == nil {
			return
		}
		select {
		case err := <-d.done:
			d.done <- err
			d.t.Fatalf("daemon exited before it was ready: %v\n%s", err, d.Log())
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.t.Fatalf("daemon not ready after 30 s\n%s", d.Log())
}

// Pid is the daemon's pid.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Log returns the daemon's output so far.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(d.LogPath)
	return string(b)
}

// Kill9 kills the daemon with SIGKILL and waits for it.
func (d *Daemon) Kill9() {
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
	d.done <- nil
}

// Stop asks the daemon to stop, then kills it by pid if it lingers.
func (d *Daemon) Stop() {
	select {
	case err := <-d.done: // already ended
		d.done <- err
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	exec.CommandContext(ctx, d.Bin, "stop", "--run-dir", d.RunDir, "--no-wait").Run()
	select {
	case err := <-d.done:
		d.done <- err
	case <-time.After(20 * time.Second):
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.done
		d.done <- nil
		d.t.Logf("daemon did not stop within 20 s; killed it\n%s", d.Log())
	}
}

// Result is one element of `htexctl results --json`.
type Result struct {
	TaskID     uint64   `json:"task_id"`
	JobID      uint64   `json:"job_id"`
	ArrayIndex *int64   `json:"array_index"`
	State      string   `json:"state"`
	ExitCode   int      `json:"exit_code"`
	ErrorKind  string   `json:"error_kind"`
	Error      string   `json:"error"`
	Attempts   int      `json:"attempts"`
	BlockID    int64    `json:"block_id"`
	Node       string   `json:"node"`
	Stdout     string   `json:"stdout"`
	Stderr     string   `json:"stderr"`
	Seconds    float64  `json:"seconds"`
	Argv       []string `json:"argv"`
}

// Run runs `htexctl ARGS --run-dir` style: the run directory goes in the
// environment. It returns stdout, stderr and the exit code.
func (d *Daemon) Run(args ...string) (string, string, int) {
	return RunBin(d.Bin, append([]string{"HTEX_RUN_DIR=" + d.RunDir}, d.Env...), args...)
}

// RunBin runs the binary with extra environment and returns stdout, stderr
// and the exit code (-1 when it could not run or ran past 10 minutes).
func RunBin(bin string, env []string, args ...string) (string, string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), code
}

// MustRun runs a verb that must exit 0 and returns its stdout.
func (d *Daemon) MustRun(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.Run(args...)
	if code != 0 {
		d.t.Fatalf("htexctl %s: exit %d\nstdout: %s\nstderr: %s\ndaemon log:\n%s", strings.Join(args, " "), code, out, errOut, tail(d.Log(), 40))
	}
	return out
}

// Submit runs `htexctl submit ARGS` and returns the job id.
func (d *Daemon) Submit(args ...string) string {
	d.t.Helper()
	return strings.TrimSpace(d.MustRun(append([]string{"submit"}, args...)...))
}

// Results returns the results of a job.
func (d *Daemon) Results(job string) []Result {
	d.t.Helper()
	out := d.MustRun("results", "--json", job)
	var rs []Result
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		d.t.Fatalf("results --json: %v\n%s", err, out)
	}
	return rs
}

// WaitJob waits for a job; it returns the exit code of `htexctl wait`.
func (d *Daemon) WaitJob(job string) int {
	d.t.Helper()
	_, _, code := d.Run("wait", job)
	return code
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string { return tail(s, n) }
