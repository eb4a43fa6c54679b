package e2e

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
	"github.com/htex/htex/rundir"
	"github.com/htex/htex/wire"
)

func TestSubmitBadInput(t *testing.T) {
	testenv.Integration(t)
	bin := testenv.Binary(t)
	env := []string{"HTEX_RUN_DIR=" + t.TempDir()} // no daemon: the flags fail first
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"no command", []string{"submit"}, []string{"no command"}},
		{"no command after --", []string{"submit", "--"}, []string{"no command"}},
		{"env without =", []string{"submit", "--env", "NOEQUALS", "--", "true"}, []string{"--env", `"NOEQUALS"`, "KEY=VALUE"}},
		{"env without key", []string{"submit", "--env", "=v", "--", "true"}, []string{"--env", `"=v"`}},
		{"array reversed", []string{"submit", "--array", "5-2", "--", "true"}, []string{"--array", `"5-2"`}},
		{"array not a range", []string{"submit", "--array", "abc", "--", "true"}, []string{"--array", `"abc"`}},
		{"array single number", []string{"submit", "--array", "7", "--", "true"}, []string{"--array", `"7"`}},
		{"array negative", []string{"submit", "--array", "-3-4", "--", "true"}, []string{"--array", `"-3-4"`}},
		{"array too large", []string{"submit", "--array", "0-99999999", "--", "true"}, []string{"--array", `"0-99999999"`}},
		{"array with file", []string{"submit", "--array", "1-2", "--file", "x"}, []string{"--array"}},
		{"negative timeout", []string{"submit", "--timeout", "-1s", "--", "true"}, []string{"--timeout", "-1s"}},
		{"negative retries", []string{"submit", "--retries", "-2", "--", "true"}, []string{"--retries", "-2"}},
		{"retries over 32 bits", []string{"submit", "--retries", "4294967295", "--", "true"}, []string{"--retries 4294967295", "[0, 10000]"}},
		{"retries over the bound", []string{"submit", "--retries", "10001", "--", "true"}, []string{"--retries 10001", "[0, 10000]"}},
		{"priority over 32 bits", []string{"submit", "--priority", "2147483648", "--", "true"}, []string{"--priority 2147483648", "2147483647"}},
		{"priority under 32 bits", []string{"submit", "--priority", "-2147483649", "--", "true"}, []string{"--priority -2147483649", "-2147483648"}},
		{"missing cwd", []string{"submit", "--cwd", "/nonexistent/htex", "--", "true"}, []string{"--cwd", `"/nonexistent/htex"`}},
		{"missing file", []string{"submit", "--file", "/nonexistent/cmds.txt"}, []string{"--file", "/nonexistent/cmds.txt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := testenv.RunBin(bin, env, tt.args...)
			bbOneLine(t, tt.name, out, errOut, code, tt.want...)
			if out != "" {
				t.Errorf("stdout %q: want nothing", out)
			}
		})
	}
}

// noDaemonVerbs are the client verbs, each of which must fail cleanly when
// no daemon answers.
var noDaemonVerbs = [][]string{
	{"status"},
	{"status", "--json"},
	{"submit", "--", "true"},
	{"wait", "1"},
	{"wait"},
	{"results", "1"},
	{"cancel", "1"},
	{"stop"},
}

func TestNoDaemon(t *testing.T) {
	testenv.Integration(t)
	bin := testenv.Binary(t)
	for _, dir := range []string{t.TempDir(), filepath.Join(t.TempDir(), "does-not-exist")} {
		for _, args := range noDaemonVerbs {
			out, errOut, code := testenv.RunBin(bin, []string{"HTEX_RUN_DIR=" + dir}, args...)
			bbOneLine(t, args[0]+" on "+dir, out, errOut, code, "no daemon answers", dir)
		}
	}
}

// TestStaleConnectionKilledDaemon: the daemon was killed with SIGKILL and
// left its connection file behind. Every verb says so, without waiting for
// a reply that cannot come.
func TestStaleConnectionKilledDaemon(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, localConfig)
	job := d.Submit("--", "true")
	d.WaitJob(job)
	pid := d.Pid()
	d.Kill9()
	if _, err := os.Stat(filepath.Join(d.RunDir, "connection.json")); err != nil {
		t.Fatalf("a killed daemon leaves its connection file: %v", err)
	}
	var wg sync.WaitGroup
	for _, args := range noDaemonVerbs {
		wg.Go(func() {
			start := time.Now()
			out, errOut, code := d.Run(args...)
			t.Logf("%v failed after %s: %s", args, time.Since(start).Round(time.Millisecond), errOut)
			bbOneLine(t, args[0], out, errOut, code, "no daemon answers", d.RunDir, strconv.Itoa(pid), "gone")
		})
	}
	wg.Wait()
}

// TestStaleConnectionNobodyListens: the connection file names a live
// process (not a daemon) and a port nobody listens on, as when the daemon
// runs on another host or its pid was reused: the verb gives up after the
// client timeout with a clear line.
func TestStaleConnectionNobodyListens(t *testing.T) {
	testenv.Integration(t)
	bin := testenv.Binary(t)
	dir := t.TempDir()
	host, _ := os.Hostname()
	conn := rundir.Connection{ProtocolVersion: wire.Version, Label: "htex", Pid: os.Getpid(), Hostname: host,
		Addresses: []string{"127.0.0.1"}, ClientPort: freePort(t), WorkerPort: freePort(t), StartedAt: time.Now()}
	b, _ := json.Marshal(conn)
	if err := os.WriteFile(filepath.Join(dir, "connection.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, errOut, code := testenv.RunBin(bin, []string{"HTEX_RUN_DIR=" + dir}, "status")
	t.Logf("status failed after %s: %s", time.Since(start).Round(time.Millisecond), errOut)
	bbOneLine(t, "status", out, errOut, code, "no daemon answers", dir)
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
