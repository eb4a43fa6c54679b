package app

import (
	"strings"
	"testing"

	"github.com/htex/htex/config"
)

func TestQueueWarnings(t *testing.T) {
	for _, c := range []struct {
		name, label, kind, queue, walltime string
		nodes                              int
		want                               string // "" = no warning
	}{
		{"polaris debug 2", "polaris", "pbs", "debug", "01:00:00", 2, ""},
		{"polaris prod 2", "polaris", "pbs", "prod", "01:00:00", 2, `provider.queue "prod": polaris queue "prod": takes 10-496 nodes, not 2`},
		{"polaris default queue is prod", "polaris", "pbs", "", "01:00:00", 2, "the default queue prod"},
		{"polaris prod 10 for 24h", "polaris", "pbs", "prod", "24:00:00", 10, "routes 10 node(s) for 24h0m0s to none of"},
		{"polaris debug too long", "polaris", "pbs", "debug", "02:00:00", 1, "at most 1h0m0s"},
		{"label with a suffix", "aurora-mps", "pbs", "prod", "01:00:00", 2, "takes 256-10624 nodes, not 2"},
		{"aurora debug-scaling 2", "aurora", "pbs", "debug-scaling", "01:00:00", 2, ""},
		{"aurora capacity 17", "aurora", "pbs", "capacity", "01:00:00", 17, "takes 1-16 nodes"},
		{"unknown queue", "aurora", "pbs", "R4242", "01:00:00", 5000, ""},
		{"other machine", "frontier", "pbs", "prod", "01:00:00", 2, ""},
		{"not pbs", "polaris", "slurm", "prod", "01:00:00", 2, ""},
		{"label only starts alike", "polarisx", "pbs", "prod", "01:00:00", 2, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := &config.Config{
				Executor: config.Executor{Label: c.label},
				Provider: config.Provider{Kind: c.kind, Queue: c.queue, Walltime: c.walltime, NodesPerBlock: c.nodes},
			}
			got := queueWarnings(cfg)
			switch {
			case c.want == "" && len(got) != 0:
				t.Errorf("warnings %q, want none", got)
			case c.want != "" && (len(got) != 1 || !strings.Contains(got[0], c.want) || !strings.Contains(got[0], "https://docs.alcf.anl.gov/")):
				t.Errorf("warnings %q, want one with %q and its source", got, c.want)
			}
		})
	}
}

func TestConfigCheckWarnsAboutQueueRange(t *testing.T) {
	dir := t.TempDir()
	site := "[executor]\nlabel = \"polaris\"\n[provider]\nkind = \"pbs\"\nqueue = \"prod\"\nnodes_per_block = 2\nwalltime = \"01:00:00\"\n"
	out, errOut, code := runRenderApp(t, "config", "check", writeFile(t, dir, "polaris.toml", site))
	if code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Errorf("exit %d, stdout %q: a warning must not fail the check", code, out)
	}
	if !strings.Contains(errOut, "warning: ") || !strings.Contains(errOut, "takes 10-496 nodes, not 2") {
		t.Errorf("stderr %q lacks the queue warning", errOut)
	}
}
