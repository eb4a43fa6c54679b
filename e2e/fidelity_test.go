package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
)

// TestEnvValuesKeepCommas: an --env value is one variable whatever commas
// it holds (the CLI library used to split it into several).
func TestEnvValuesKeepCommas(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, localConfig)
	job := d.Submit("--env", "X=a,b=c", "--env", "OMP_PLACES={0,1},{2,3}", "--",
		"sh", "-c", `printf '%s|%s|%s' "$X" "${b-unset}" "$OMP_PLACES"`)
	if code := d.WaitJob(job); code != 0 {
		t.Fatalf("wait: exit %d", code)
	}
	rs := d.Results(job)
	if len(rs) != 1 || rs[0].Stdout != "a,b=c|unset|{0,1},{2,3}" {
		t.Fatalf("the task saw %q, want %q (%+v)", rs[0].Stdout, "a,b=c|unset|{0,1},{2,3}", rs)
	}
}

// TestFlagsAfterArguments: `htexctl results $job --json`, the README's own
// example, and flags after the job id of the other verbs, are parsed.
func TestFlagsAfterArguments(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, localConfig)
	job := d.Submit("--", "echo", "hi")
	bin := testenv.Binary(t)
	if out, errOut, code := testenv.RunBin(bin, nil, "wait", job, "--run-dir", d.RunDir); code != 0 {
		t.Fatalf("wait JOB --run-dir: exit %d\n%s%s", code, out, errOut)
	}
	out := d.MustRun("results", job, "--json")
	var rs []testenv.Result
	if err := json.Unmarshal([]byte(out), &rs); err != nil || len(rs) != 1 || rs[0].Stdout != "hi\n" {
		t.Fatalf("results JOB --json: %v\n%s", err, out)
	}
	if out := d.MustRun("results", job, "--failed", "--json"); out != "[]\n" {
		t.Fatalf("results JOB --failed --json: %q, want an empty list", out)
	}
}

// TestBytesReachTheTask: argv, env and cwd that are not UTF-8 (file names
// are bytes on Linux) reach the task exactly, from the command line and
// from a --file, also through the journal: the tasks are queued by a
// daemon without blocks and run by the restarted daemon. They used to be
// refused (argv) or turned into U+FFFD (env).
func TestBytesReachTheTask(t *testing.T) {
	testenv.Integration(t)
	const cfg = `
[executor]
max_workers_per_node = 2
cores_per_worker = 0.01
heartbeat_period = 1
heartbeat_threshold = 5
[provider]
kind = "local"
init_blocks = %d
max_blocks = %d
`
	d := testenv.StartDaemon(t, fmt.Sprintf(cfg, 0, 0))
	dir := filepath.Join(t.TempDir(), "d\xfe")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	hex := `| od -An -tx1 | tr -d ' \n'`
	argJob := d.Submit("--", "sh", "-c", `printf %s "$1" `+hex, "sh", "caf\xe9")
	envJob := d.Submit("--env", "X=\xff,\x80", "--", "sh", "-c", `printf %s "$X" `+hex)
	cwdJob := d.Submit("--cwd", dir, "--", "sh", "-c", `pwd `+hex)
	f := filepath.Join(t.TempDir(), "cmds.txt")
	if err := os.WriteFile(f, []byte("printf %s '<\xff>' "+hex+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fileJob := d.Submit("--file", f)
	d.Stop()
	if err := os.WriteFile(d.Config, []byte(fmt.Sprintf(cfg, 1, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	d.Start()
	toHex := func(s string) string { return fmt.Sprintf("%x", s) }
	for _, c := range []struct{ job, want string }{
		{argJob, toHex("caf\xe9")},
		{envJob, toHex("\xff,\x80")},
		{cwdJob, toHex(dir + "\n")},
		{fileJob, toHex("<\xff>")},
	} {
		limitsWait(t, d, c.job, time.Minute)
		rs := d.Results(c.job)
		if len(rs) != 1 || rs[0].State != "succeeded" || rs[0].Stdout != c.want {
			t.Errorf("job %s: the task saw %+v, want the bytes %s", c.job, rs, c.want)
		}
	}
}
