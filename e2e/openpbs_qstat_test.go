package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/htex/htex/config"
	"github.com/htex/htex/internal/execx"
	"github.com/htex/htex/providers"
	"github.com/htex/htex/providers/pbs"
)

// TestOpenPBSQstatStates: the PBS provider's Status reads the real
// server's `qstat -f -F json -x` for a job in every state OpenPBS can show
// here (held, queued for ever, waiting for its start time (qsub -a),
// running, array begun, exit 0, exit 3,
// qdel'ed while running and while queued, killed at its walltime, unknown
// id). With HTEX_PBS_CAPTURE=<folder> it also writes what qstat printed
// there: that is how providers/pbs/testdata/openpbs-*.json were made (see
// providers/pbs/testdata/README.md).
func TestOpenPBSQstatStates(t *testing.T) {
	env := requireOpenPBS(t)
	t.Setenv("PATH", strings.TrimPrefix(env[0], "PATH="))
	outDir := t.TempDir() // the jobs' .o and .e files
	qsub := func(args ...string) string {
		t.Helper()
		args = append([]string{"-o", outDir, "-e", outDir}, args...)
		out, err := openpbsCmd(env, "qsub", args...)
		if err != nil {
			t.Fatalf("qsub %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		id := strings.TrimSpace(out)
		t.Cleanup(func() { openpbsCmd(env, "qdel", "-W", "force", id) })
		return id
	}
	sel := "select=1:ncpus=1"
	const anyCode = -1000
	ids := map[string]string{
		"held":      qsub("-h", "-N", "held", "-l", sel, "--", "/bin/sleep", "60"),
		"never":     qsub("-N", "never", "-l", "select=5:ncpus=2", "-l", "place=scatter", "--", "/bin/true"),
		"later":     qsub("-N", "later", "-a", time.Now().Add(2*time.Hour).Format("200601021504"), "-l", sel, "--", "/bin/true"),
		"running":   qsub("-N", "running", "-l", sel, "--", "/bin/sleep", "60"),
		"array":     qsub("-N", "array", "-J", "1-2", "-l", sel, "--", "/bin/sleep", "60"),
		"ok":        qsub("-N", "ok", "-l", sel, "--", "/bin/true"),
		"exit3":     qsub("-N", "exit3", "-l", sel, "--", "/bin/sh", "-c", "exit 3"),
		"qdel-run":  qsub("-N", "qdel-run", "-l", sel, "--", "/bin/sleep", "60"),
		"qdel-held": qsub("-h", "-N", "qdel-held", "-l", sel, "--", "/bin/sleep", "60"),
		"walltime":  qsub("-N", "walltime", "-l", sel, "-l", "walltime=00:00:03", "--", "/bin/sleep", "60"),
	}
	want := map[string]struct {
		state providers.State
		code  int
		msg   string
	}{
		"held":      {providers.Held, 0, "held (job_state H)"},
		"never":     {providers.Pending, 0, "Can Never Run: Not enough total nodes available"},
		"later":     {providers.Pending, 0, "waiting for its start time (job_state W)"},
		"running":   {providers.Running, 0, "Job run at"},
		"array":     {providers.Running, 0, "array job begun (job_state B)"},
		"ok":        {providers.Completed, 0, "and finished"},
		"exit3":     {providers.Failed, 3, "Exit_status 3"},
		"qdel-run":  {providers.Cancelled, anyCode, "deleted with qdel (substate 91)"}, // Exit_status 271 or 0: seen both
		"qdel-held": {providers.Cancelled, 0, "deleted with qdel (substate 91)"},
		"walltime":  {providers.Timeout, -29, "JOB_EXEC_KILL_WALLTIME"},
		"unknown":   {providers.Unknown, 0, "qstat does not know this job"},
	}
	ids["unknown"] = "99999.pbshost"

	p := pbs.New(config.Provider{Kind: "pbs"}, execx.Exec{Timeout: 30 * time.Second})
	status := func() map[string]providers.Status {
		var list []string
		for _, id := range ids {
			list = append(list, id)
		}
		sts, err := p.Status(context.Background(), list)
		if err != nil {
			t.Fatalf("Status: %v", err)
		}
		return sts
	}
	deleted := false
	var sts map[string]providers.Status
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		sts = status()
		// Deleted once it really runs: a job qdel'ed while still "sent
		// for execution" ended here as finished with Exit_status 0.
		if r := sts[ids["qdel-run"]]; !deleted && r.State == providers.Running && strings.HasPrefix(r.Message, "Job run at") {
			if out, err := openpbsCmd(env, "qdel", ids["qdel-run"], ids["qdel-held"]); err != nil {
				t.Fatalf("qdel: %v\n%s", err, out)
			}
			deleted = true
		}
		done := deleted
		for name, w := range want {
			if sts[ids[name]].State != w.state {
				done = false
			}
		}
		if done || time.Now().After(deadline) {
			break
		}
	}
	for name, w := range want {
		g := sts[ids[name]]
		if g.State != w.state || (w.code != anyCode && g.ExitCode != w.code) || !strings.Contains(g.Message, w.msg) {
			t.Errorf("%s (%s): %+v; want %s, exit %d, message containing %q", name, ids[name], g, w.state, w.code, w.msg)
		}
	}
	if dir := os.Getenv("HTEX_PBS_CAPTURE"); dir != "" {
		openpbsCapture(t, env, dir, ids)
	}
}

// openpbsCapture writes the real qstat output of the jobs, grouped as the
// provider's fixtures are.
func openpbsCapture(t *testing.T, env []string, dir string, ids map[string]string) {
	t.Helper()
	groups := map[string][]string{
		"openpbs-queued.json":   {"held", "never", "later"},
		"openpbs-running.json":  {"running", "array"},
		"openpbs-finished.json": {"ok", "exit3", "qdel-run", "qdel-held", "walltime"},
	}
	for file, names := range groups {
		args := []string{"-E", "-f", "-F", "json", "-x"}
		for _, n := range names {
			args = append(args, ids[n])
		}
		out, err := openpbsStdout(env, "qstat", args...)
		if err != nil {
			t.Fatalf("qstat %v: %v\n%s", args, err, out)
		}
		if err := os.WriteFile(filepath.Join(dir, file), []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A finished job asked for without -x: exit 35, JSON without "Jobs".
	out, _ := openpbsStdout(env, "qstat", "-f", "-F", "json", ids["ok"])
	if err := os.WriteFile(filepath.Join(dir, "openpbs-none.json"), []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("captured qstat output into %s: %v", dir, ids)
}

// openpbsStdout runs a PBS command and returns its standard output only.
func openpbsStdout(env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(openpbsBin, name), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	return string(out), err
}
