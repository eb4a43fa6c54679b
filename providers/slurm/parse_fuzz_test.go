package slurm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/htex/htex/providers"
)

// knownState says whether s is one of the states providers defines.
func knownState(s providers.State) bool {
	switch s {
	case providers.Pending, providers.Running, providers.Held, providers.Completed, providers.Failed,
		providers.Cancelled, providers.Timeout, providers.Preempted, providers.Unknown:
		return true
	}
	return false
}

// firstFields is the set of what could be a job id in text, as splitter
// cuts a line.
func firstFields(text string, first func(line string) string) map[string]bool {
	ids := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		ids[first(line)] = true
	}
	return ids
}

func addFiles(f *testing.F, names ...string) {
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
}

// Whatever squeue prints, each job read is one of its lines' ids, with a
// known state, and only a waiting job is ever stuck.
func FuzzParseSqueue(f *testing.F) {
	addFiles(f, "squeue-mixed.txt", "squeue-reasons.txt", "squeue-clusters.txt")
	f.Add("12 PD ReqNodeNotAvail, UnavailableNodes:n[1-2]\n13 ZZ\n")
	f.Add("CLUSTER: a\n 7  R  None\n")
	f.Fuzz(func(t *testing.T, text string) {
		ids := firstFields(text, func(line string) string {
			if f := strings.Fields(line); len(f) > 0 {
				return f[0]
			}
			return ""
		})
		for id, st := range ParseSqueue(text) {
			if !ids[id] || id == "" || id == "CLUSTER:" {
				t.Errorf("job %q is not the id of a line of %q", id, text)
			}
			if !knownState(st.State) {
				t.Errorf("job %q: state %q", id, st.State)
			}
			if st.Stuck && st.State != providers.Pending && st.State != providers.Held {
				t.Errorf("job %q: stuck while %s", id, st.State)
			}
			if st.State == providers.Unknown && st.Message == "" {
				t.Errorf("job %q: unknown without saying why", id)
			}
		}
	})
}

// Whatever sacct prints, each job read is one of its lines' ids, with a
// known state, and an exit code only once it ended.
func FuzzParseSacct(f *testing.F) {
	addFiles(f, "sacct.txt")
	f.Add("5|CANCELLED by 1000|0:15\n5|REQUEUED|0:0\n6|TIMEOUT|0:1\n")
	f.Add("|x|y\n7||\n8|FAILED|3:0|extra\n")
	f.Fuzz(func(t *testing.T, text string) {
		ids := firstFields(text, func(line string) string {
			id, _, _ := strings.Cut(strings.TrimSpace(line), "|")
			return id
		})
		for id, st := range ParseSacct(text) {
			if !ids[id] || id == "" {
				t.Errorf("job %q is not the id of a line of %q", id, text)
			}
			if !knownState(st.State) {
				t.Errorf("job %q: state %q", id, st.State)
			}
			if st.ExitCode != 0 && !st.State.Terminal() {
				t.Errorf("job %q: exit code %d while %s", id, st.ExitCode, st.State)
			}
		}
	})
}
