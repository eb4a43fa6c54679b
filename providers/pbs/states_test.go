package pbs

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/htex/htex/config"
	"github.com/htex/htex/providers"
)

// observed is one state the provider reported, with its message.
type observed struct {
	state providers.State
	msg   string
}

// watch polls Status every 50 ms until the job is terminal, or unknown
// after having been seen known, or timeout; it returns each change.
func watch(t *testing.T, p *PBS, id string, timeout time.Duration) []observed {
	t.Helper()
	var seen []observed
	for deadline := time.Now().Add(timeout); ; {
		m, err := p.Status(context.Background(), []string{id})
		if err != nil {
			t.Fatalf("Status(%s): %v", id, err)
		}
		st := m[id]
		if n := len(seen); n == 0 || seen[n-1].state != st.State || seen[n-1].msg != st.Message {
			seen = append(seen, observed{st.State, st.Message})
		}
		if st.State.Terminal() || (st.State == providers.Unknown && len(seen) > 1) {
			return seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no end after %v: %v", id, timeout, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// has reports whether seen holds state with a message containing msg.
func has(seen []observed, state providers.State, msg string) bool {
	for _, o := range seen {
		if o.state == state && strings.Contains(o.msg, msg) {
			return true
		}
	}
	return false
}

// TestEmulatorStates drives the emulator through every job state PBS
// reports (PBS_EMULATOR_STATES) and checks how the provider classifies
// each, from real qstat -f -F json -x output.
func TestEmulatorStates(t *testing.T) {
	e := buildEmulator(t)
	t.Setenv("PATH", e.pathEnv)
	const job = "#!/bin/bash\n#PBS -l walltime=00:05:00\nsleep 1\n"

	for _, c := range []struct {
		name, states string
		want         []observed // each must be seen, in any order
		final        providers.State
	}{
		{"T in transit is pending", "T:700ms,Q:300ms", []observed{{providers.Pending, "being moved to a new location (job_state T)"}}, providers.Completed},
		{"W waiting for its start time is pending", "W:700ms", []observed{{providers.Pending, "waiting for its start time (job_state W)"}}, providers.Completed},
		{"B array begun is running", "B", []observed{{providers.Running, "array job begun (job_state B)"}}, providers.Completed},
		{"S suspended is held, then running again", "R:300ms,S:1s,R", []observed{{providers.Running, "Job run at"}, {providers.Held, "suspended (job_state S)"}}, providers.Completed},
		{"E exiting is still running", "R,E:1s", []observed{{providers.Running, "exiting after having run (job_state E)"}}, providers.Completed},
		{"M moved to another server is unknown", "Q:300ms,M", []observed{{providers.Pending, ""}, {providers.Unknown, "moved to another server (job_state M)"}}, providers.Unknown},
		{"vanished before running is unknown", "Q:500ms,gone", []observed{{providers.Pending, ""}, {providers.Unknown, "qstat does not know this job"}}, providers.Unknown},
		{"vanished after running (no history) is unknown", "R,gone", []observed{{providers.Running, ""}, {providers.Unknown, "qstat does not know this job"}}, providers.Unknown},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := New(config.Provider{Kind: "pbs"}, e.runner("PBS_EMULATOR_STATES="+c.states))
			id := submit(t, p, e.script(t, strings.NewReplacer(" ", "-", "(", "", ")", "").Replace(c.name), job))
			seen := watch(t, p, id, 20*time.Second)
			for _, w := range c.want {
				if !has(seen, w.state, w.msg) {
					t.Errorf("never saw %s with %q: %v", w.state, w.msg, seen)
				}
			}
			if last := seen[len(seen)-1]; last.state != c.final {
				t.Errorf("last %v, want %s (all: %v)", last, c.final, seen)
			}
		})
	}

	t.Run("H held by a hook is held with the comment until qrls", func(t *testing.T) {
		t.Parallel()
		p := New(config.Provider{Kind: "pbs"}, e.runner("PBS_EMULATOR_STATES=H"))
		id := submit(t, p, e.script(t, "hookheld", job))
		waitState(t, p, id, providers.Held, 5*time.Second)
		m, err := p.Status(context.Background(), []string{id})
		if err != nil {
			t.Fatal(err)
		}
		if want := "held (job_state H); job held, too many failed attempts to run"; m[id].Message != want {
			t.Errorf("message %q, want %q", m[id].Message, want)
		}
		if res, err := e.runner().Run(context.Background(), "", "qrls", id); err != nil || res.ExitCode != 0 {
			t.Fatalf("qrls: %+v, %v", res, err)
		}
		if st, seen := waitTerminal(t, p, id, 10*time.Second); st.State != providers.Completed {
			t.Fatalf("final %+v (states %v)", st, seen)
		}
	})

	t.Run("qdel of a suspended job ends cancelled", func(t *testing.T) {
		t.Parallel()
		p := New(config.Provider{Kind: "pbs"}, e.runner("PBS_EMULATOR_STATES=R:200ms,S:30s,R"))
		id := submit(t, p, e.script(t, "suspended-qdel", "#!/bin/bash\nsleep 60\n"))
		waitState(t, p, id, providers.Held, 10*time.Second)
		if err := p.Cancel(context.Background(), []string{id}); err != nil {
			t.Fatal(err)
		}
		if st, seen := waitTerminal(t, p, id, 10*time.Second); st.State != providers.Cancelled {
			t.Fatalf("final %+v (states %v)", st, seen)
		}
	})

	t.Run("a bad PBS_EMULATOR_STATES is a qsub error", func(t *testing.T) {
		t.Parallel()
		p := New(config.Provider{Kind: "pbs"}, e.runner("PBS_EMULATOR_STATES=S:1s"))
		_, err := p.Submit(context.Background(), providers.Submission{BlockID: 1, ScriptPath: e.script(t, "badstates", job)})
		var ce *providers.CommandError
		if !errors.As(err, &ce) || ce.ExitCode != 2 || !strings.Contains(ce.Stderr, "must follow R or B") {
			t.Fatalf("Submit error = %#v", err)
		}
	})
}

// TestEmulatorStrictALCF checks the emulator's strict mode (what ALCF's
// qsub refuses, with its words) and what the provider makes of it.
func TestEmulatorStrictALCF(t *testing.T) {
	e := buildEmulator(t)
	t.Setenv("PATH", e.pathEnv)
	script := func(name, directives string) string {
		return e.script(t, name, "#!/bin/bash\n#PBS -l walltime=00:30:00\n"+directives+"true\n")
	}
	for _, c := range []struct {
		name, machine, directives string
		extraEnv                  []string
		code                      int
		stderr                    string
	}{
		{"no account", "polaris", "#PBS -q debug\n#PBS -l filesystems=home:eagle\n", nil, 32, "qsub: Account_Name is required to be set."},
		{"no filesystems", "aurora", "#PBS -A P\n#PBS -q debug\n", nil, 32, "qsub: Resource: filesystems is required to be set."},
		{"polaris debug takes 2 nodes at most", "polaris", "#PBS -A P\n#PBS -q debug\n#PBS -l select=3\n#PBS -l filesystems=home\n", nil, 188, "qsub: Job violates queue and/or server resource limits"},
		{"aurora prod takes 256 nodes at least", "aurora", "#PBS -A P\n#PBS -q prod\n#PBS -l select=2\n#PBS -l filesystems=flare\n", nil, 188, "qsub: Job violates queue and/or server resource limits"},
		{"polaris prod routed at submit", "polaris", "#PBS -A P\n#PBS -q prod\n#PBS -l select=10\n#PBS -l walltime=24:00:00\n#PBS -l filesystems=home\n",
			[]string{"PBS_EMULATOR_ROUTE_AT_SUBMIT=1"}, 191, "qsub: Job rejected by all possible destinations"},
		{"unknown queue", "aurora", "#PBS -A P\n#PBS -q workq\n#PBS -l filesystems=flare\n", nil, 170, "qsub: Unknown queue"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := New(config.Provider{Kind: "pbs"}, e.runner(append([]string{"PBS_EMULATOR_STRICT=" + c.machine}, c.extraEnv...)...))
			path := script(strings.ReplaceAll(c.name, " ", "-"), c.directives)
			_, err := p.Submit(context.Background(), providers.Submission{BlockID: 1, ScriptPath: path})
			var ce *providers.CommandError
			if !errors.As(err, &ce) || ce.ExitCode != c.code || ce.Stderr != c.stderr {
				t.Fatalf("Submit error = %#v, want exit %d and %q", err, c.code, c.stderr)
			}
		})
	}

	t.Run("polaris prod accepts an unroutable job and it vanishes", func(t *testing.T) {
		t.Parallel()
		p := New(config.Provider{Kind: "pbs"}, e.runner("PBS_EMULATOR_STRICT=polaris"))
		// 10 nodes for 24 h: inside prod's own range, but small takes 10-24
		// nodes for at most 3 h, so nothing routes it.
		id := submit(t, p, script("vanish", "#PBS -A P\n#PBS -q prod\n#PBS -l select=10\n#PBS -l walltime=24:00:00\n#PBS -l filesystems=home:eagle\n"))
		// The wrapper drops it at once, so the provider may never see it
		// known: poll until qstat no longer lists it.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			m, err := p.Status(context.Background(), []string{id})
			if err != nil {
				t.Fatal(err)
			}
			if st := m[id]; st.State == providers.Unknown && strings.Contains(st.Message, "routing queue dropped it") {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("still %+v, want unknown: vanished", st)
			}
		}
	})

	t.Run("a job that fits runs", func(t *testing.T) {
		t.Parallel()
		p := New(config.Provider{Kind: "pbs"}, e.runner("PBS_EMULATOR_STRICT=aurora"))
		id := submit(t, p, script("fits", "#PBS -A P\n#PBS -q debug-scaling\n#PBS -l select=2\n#PBS -l filesystems=home:flare\n"))
		if st, seen := waitTerminal(t, p, id, 20*time.Second); st.State != providers.Completed {
			t.Fatalf("final %+v (states %v)", st, seen)
		}
	})
}
