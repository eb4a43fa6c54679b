package e2e

import (
	"encoding/json"
	"testing"

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
