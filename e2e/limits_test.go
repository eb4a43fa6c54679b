package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
	"github.com/htex/htex/internal/zsock"
	"github.com/htex/htex/rundir"
	"github.com/htex/htex/wire"
)

// The tests of this file cross the real size limits of wire/limits.go
// (64 MiB frames) with the real binary, scaled down in task counts.

// limitsWait runs `htexctl wait JOB` for at most limit: a job whose tasks
// are stuck fails the test instead of hanging it.
func limitsWait(t *testing.T, d *testenv.Daemon, job string, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.Bin, "wait", job)
	cmd.Env = append(os.Environ(), "HTEX_RUN_DIR="+d.RunDir)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		st, _, _ := d.Run("status")
		t.Fatalf("job %d not done within %s\nstatus:\n%s\ndaemon log:\n%s", mustAtoi(t, job), limit, st, testenv.Tail(d.Log(), 30))
	}
	if err != nil {
		t.Fatalf("wait %s: %v\n%s", job, err, out)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		t.Fatalf("%q: not a number", s)
	}
	return n
}

// TestLargeTasksReachAPool: 48 queued tasks of 1.4 MB of argv each (67 MB,
// over the 64 MiB frame limit) go to one fresh pool of 80 slots. They used
// to go in one Tasks message that the pool dropped, leaving them "running"
// for good; now the batches are cut at wire.BatchBytes and every task runs
// with its argv intact. The tasks are queued by a daemon without blocks,
// which stops; the restarted daemon, allowed a block, finds them all queued.
func TestLargeTasksReachAPool(t *testing.T) {
	testenv.Integration(t)
	const cfg = `
[executor]
max_workers_per_node = 80
cores_per_worker = 0.01
heartbeat_period = 1
heartbeat_threshold = 10
[provider]
kind = "local"
init_blocks = %d
max_blocks = %d
`
	d := testenv.StartDaemon(t, fmt.Sprintf(cfg, 0, 0))
	// 12 arguments of 120,000 bytes: under Linux's 128 KiB per string and
	// 2 MiB in all with an 8 MiB stack limit, so each task can exec.
	arg := strings.Repeat("a", 120000)
	args := []string{"--array", "1-12", "--", "sh", "-c", `n=0; for a; do n=$((n + ${#a})); done; echo "$# $n"`, "sh"}
	for range 12 {
		args = append(args, arg)
	}
	var jobs []string
	for range 4 {
		jobs = append(jobs, d.Submit(args...))
	}
	d.Stop()
	if err := os.WriteFile(d.Config, []byte(fmt.Sprintf(cfg, 1, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	d.Start()
	for _, job := range jobs {
		limitsWait(t, d, job, 3*time.Minute)
		for _, r := range d.Results(job) {
			if r.State != "succeeded" || strings.TrimSpace(r.Stdout) != "12 1440000" {
				t.Fatalf("task %d: %s, stdout %q, error %q", r.TaskID, r.State, r.Stdout, r.Error)
			}
		}
	}
}

// TestTaskTooLargeRefusedAtSubmit: a task that no Linux node could exec
// is refused before anything is sent, naming the line and the limit.
func TestTaskTooLargeRefusedAtSubmit(t *testing.T) {
	testenv.Integration(t)
	bin := testenv.Binary(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	overArgv := write("over.txt", "echo fine\n\n"+strings.Repeat("x", wire.MaxArgEnvBytes-30)+"\n")
	overLine := write("long.txt", "echo fine\n"+strings.Repeat("y", wire.MaxArgEnvBytes+1)+"\n")
	env := []string{"HTEX_RUN_DIR=" + dir}
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"argv over the limit", []string{"submit", "--file", overArgv}, []string{"--file " + overArgv + " line 3", "over the 6291456-byte limit"}},
		{"line over the limit", []string{"submit", "--file", overLine}, []string{"line 2", "longer than 6291456 bytes"}},
		{"stdout path over PATH_MAX", []string{"submit", "--stdout", "/" + strings.Repeat("o", 5000), "--", "true"}, []string{"stdout path of 5001 bytes", "4095-byte limit"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := testenv.RunBin(bin, env, tt.args...)
			bbOneLine(t, tt.name, out, errOut, code, tt.want...)
		})
	}
}

// TestLargeSubmitAccepted: a --file of 70 MB (5,000 lines of 14 KB) is
// sent in requests of at most wire.BatchBytes; it used to go in one frame
// over the limit, which the daemon dropped, and the client said after 60 s
// that no daemon answered.
func TestLargeSubmitAccepted(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, localConfig)
	var b strings.Builder
	pad := strings.Repeat("p", 14000)
	for i := range 5000 {
		fmt.Fprintf(&b, ": %d %s\n", i, pad)
	}
	f := filepath.Join(t.TempDir(), "cmds.txt")
	if err := os.WriteFile(f, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	job := d.Submit("--noop", "--file", f)
	limitsWait(t, d, job, 3*time.Minute)
	rs := d.Results(job)
	if len(rs) != 5000 {
		t.Fatalf("%d results, want 5000", len(rs))
	}
	for i, r := range rs {
		want := fmt.Sprintf(": %d %s", i, pad)
		if r.State != "succeeded" || len(r.Argv) != 3 || r.Argv[2] != want {
			t.Fatalf("task %d: %s, argv of %d", r.TaskID, r.State, len(r.Argv))
		}
	}
}

// TestResultsOverAFrame: the results of a job hold 80 MiB of output tails
// (40 tasks, 1 MiB on stdout and on stderr each), more than one frame;
// the pool sends them and `results` pages through them, every byte intact.
// Both used to fail: the pool's results and the one reply page went over
// the 64 MiB limit.
func TestResultsOverAFrame(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, `
[executor]
max_workers_per_node = 8
cores_per_worker = 0.01
heartbeat_period = 1
heartbeat_threshold = 10
output_tail_bytes = 1048576
[provider]
kind = "local"
`)
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	f := filepath.Join(t.TempDir(), "mib.txt")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	job := d.Submit("--array", "1-40", "--", "sh", "-c", "cat "+f+"; cat "+f+" >&2; echo {} >&2")
	limitsWait(t, d, job, 3*time.Minute)
	rs := d.Results(job)
	if len(rs) != 40 {
		t.Fatalf("%d results, want 40", len(rs))
	}
	for _, r := range rs {
		idx := strconv.FormatInt(*r.ArrayIndex, 10) + "\n"
		wantErr := string(data[len(idx):]) + idx
		if r.State != "succeeded" || r.Stdout != string(data) || r.Stderr != wantErr {
			t.Fatalf("task %d: %s, %d bytes of stdout and %d of stderr, not the last MiB written", r.TaskID, r.State, len(r.Stdout), len(r.Stderr))
		}
	}
	// the table prints too
	if out := d.MustRun("results", job); strings.Count(out, "succeeded") != 40 {
		t.Fatalf("results table: %d rows succeeded, want 40", strings.Count(out, "succeeded"))
	}
}

// TestTailLimitInConfig: output_tail_bytes over 8 MiB is refused by
// `config check` (70 MB used to pass, and results then could not be sent).
func TestTailLimitInConfig(t *testing.T) {
	testenv.Integration(t)
	bin := testenv.Binary(t)
	f := filepath.Join(t.TempDir(), "site.toml")
	if err := os.WriteFile(f, []byte("[executor]\noutput_tail_bytes = 70000000\n[provider]\nkind = \"local\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := testenv.RunBin(bin, nil, "config", "check", f)
	if code != 2 || !strings.Contains(errOut, "executor.output_tail_bytes 70000000") || !strings.Contains(errOut, "8388608") {
		t.Fatalf("config check: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
}

// vmHWM is the peak resident memory of a process, in KiB.
func vmHWM(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return mustAtoi(t, strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// TestOversizeFrameCutAtTransport: a peer with valid keys sends a frame of
// 100 MiB on each channel. libzmq disconnects it on reading the frame's
// size (ZMQ_MAXMSGSIZE), so the daemon's peak memory does not grow by the
// frame (it used to receive it whole, then refuse it), and it goes on.
func TestOversizeFrameCutAtTransport(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, localConfig)
	conn, err := rundir.ReadConnection(d.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	if !conn.Encrypted {
		t.Fatal("the default config is encrypted")
	}
	job := d.Submit("--", "true") // the daemon's memory warms up first
	limitsWait(t, d, job, time.Minute)
	before := vmHWM(t, d.Pid())
	frame := make([]byte, 100<<20)
	for _, ch := range []struct {
		role rundir.Role
		port int
	}{{rundir.Client, conn.ClientPort}, {rundir.Pool, conn.WorkerPort}} {
		kp, err := rundir.LoadKeyPair(d.RunDir, ch.role)
		if err != nil {
			t.Fatal(err)
		}
		s, err := zsock.Dealer([]string{zsock.Endpoint("127.0.0.1", ch.port)}, "big-"+string(ch.role), false,
			&zsock.ClientSecurity{ServerPublic: conn.ServerPublicKey, Public: kp.Public, Secret: kp.Secret})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SendBytes(frame, 0); err != nil {
			t.Fatal(err)
		}
		// Time for the frame to cross (or be cut); then the daemon answers.
		time.Sleep(3 * time.Second)
		s.Close()
		if out, errOut, code := d.Run("status"); code != 0 {
			t.Fatalf("status after a %s frame of 100 MiB: exit %d\n%s%s", ch.role, code, out, errOut)
		}
	}
	after := vmHWM(t, d.Pid())
	t.Logf("daemon peak RSS: %d KiB before, %d KiB after two frames of 100 MiB", before, after)
	if after-before > 50<<10 {
		t.Fatalf("the daemon's peak RSS grew by %d KiB: the frames were received", after-before)
	}
	if strings.Contains(d.Log(), "104857600") {
		t.Fatalf("the daemon decoded a frame of 100 MiB:\n%s", testenv.Tail(d.Log(), 20))
	}
}

// TestMalformedRequestAnswered: a request the daemon cannot read gets an
// error reply with its request id, instead of silence that the client
// would report as "no daemon answers".
func TestMalformedRequestAnswered(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, plainConfig)
	conn, err := rundir.ReadConnection(d.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	good := wire.MustEncode(&wire.Envelope{RequestId: 42, Body: &wire.Envelope_Status{Status: &wire.StatusRequest{}}})
	bad := append(good[:len(good):len(good)], 0xff, 0xff, 0xff) // a field that does not parse
	m, err := wire.Decode(rawExchange(t, conn.ClientPort, "", bad))
	if err != nil {
		t.Fatalf("the answer does not decode: %v", err)
	}
	e, ok := m.Body.(*wire.Envelope_Error)
	if !ok || m.RequestId != 42 || !strings.Contains(e.Error.Message, "could not read request 42") {
		t.Fatalf("got request %d %v, want an ErrorReply to request 42", m.RequestId, m.Body)
	}
}

// TestResultsManyPages: `results` of a job of 25,000 tasks goes through 25
// pages and prints every task once, in order, as JSON and as a table
// (both are printed page by page).
func TestResultsManyPages(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, localConfig)
	job := d.Submit("--noop", "--array", "1-25000", "--", "true", "{}")
	limitsWait(t, d, job, 3*time.Minute)
	rs := d.Results(job)
	if len(rs) != 25000 {
		t.Fatalf("%d results, want 25000", len(rs))
	}
	for i, r := range rs {
		if *r.ArrayIndex != int64(i+1) || r.State != "succeeded" || (i > 0 && r.TaskID != rs[i-1].TaskID+1) {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	table := d.MustRun("results", job)
	if n := strings.Count(table, " succeeded "); n != 25000 || !strings.HasPrefix(table, "TASK") {
		t.Fatalf("the table has %d rows", n)
	}
}
