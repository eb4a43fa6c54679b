package slurm

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/htex/htex/blockscript"
	"github.com/htex/htex/config"
	"github.com/htex/htex/providers"

	"github.com/htex/htex/internal/testenv"
)

// requireCluster skips (or, in CI, fails) unless a Slurm cluster answers
// with at least two idle nodes.
func requireCluster(t *testing.T) {
	t.Helper()
	testenv.Integration(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sinfo", "-h", "-N", "-o", "%N %T").CombinedOutput()
	idle := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 && (f[1] == "idle" || f[1] == "mixed") {
			idle[f[0]] = true
		}
	}
	if err == nil && len(idle) >= 2 {
		return
	}
	msg := "no Slurm cluster with two idle nodes: sinfo said " + strings.TrimSpace(string(out))
	if err != nil {
		msg += " (" + err.Error() + ")"
	}
	testenv.SkipOrFail(t, "%s; run scripts/slurm-cluster.sh up (as root) to start a local one", msg)
}

// block renders and writes a block script the way the daemon does and
// returns its submission.
func block(t *testing.T, toml string, id int64, workerCmd string) providers.Submission {
	t.Helper()
	cfg, err := config.Parse(toml)
	if err != nil {
		t.Fatal(err)
	}
	run := t.TempDir()
	dir := filepath.Join(run, "blocks", strconv.FormatInt(id, 10))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	script, err := blockscript.Render(cfg, blockscript.Params{BlockID: id, RunDir: run, BlockDir: dir, WorkerCommand: workerCmd})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "submit.sh")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	return providers.Submission{BlockID: id, Name: blockscript.JobName(cfg.Executor.Label, id),
		Script: script, ScriptPath: path, Dir: dir, Nodes: cfg.Provider.NodesPerBlock}
}

// waitFor polls Status until the job is in a terminal state or the time is
// up, and returns the states seen in order (repeats dropped).
func waitFor(t *testing.T, s *Slurm, id string, until func(providers.State) bool, limit time.Duration) []providers.State {
	t.Helper()
	var seen []providers.State
	deadline := time.Now().Add(limit)
	for {
		st, err := s.Status(context.Background(), []string{id})
		if err != nil {
			t.Fatalf("Status: %v", err)
		}
		if n := len(seen); n == 0 || seen[n-1] != st[id].State {
			seen = append(seen, st[id].State)
		}
		if until(st[id].State) {
			return seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: states %v after %s (last %+v)", id, seen, limit, st[id])
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func TestIntegrationSubmitStatusCancel(t *testing.T) {
	requireCluster(t)
	s := New(config.Provider{CmdTimeout: config.Duration(30 * time.Second)}, nil)
	ctx := context.Background()

	t.Run("two nodes complete", func(t *testing.T) {
		sub := block(t, `
[executor]
label = "itest"
[provider]
kind = "slurm"
nodes_per_block = 2
walltime = "00:05:00"
launcher = "srun"
worker_init = "export GREETING=hello"
`, 1, `echo "$GREETING from node=$SLURMD_NODENAME block=$HTEX_BLOCK_ID"`)
		id, err := s.Submit(ctx, sub)
		if err != nil {
			t.Fatalf("Submit: %v", err)
		}
		t.Logf("job %s", id)
		seen := waitFor(t, s, id, providers.State.Terminal, 120*time.Second)
		for _, st := range seen[:len(seen)-1] {
			if st != providers.Pending && st != providers.Running {
				t.Errorf("states %v: want only pending/running before the end", seen)
			}
		}
		if last := seen[len(seen)-1]; last != providers.Completed {
			errOut, _ := os.ReadFile(filepath.Join(sub.Dir, "stderr"))
			t.Fatalf("states %v, want completed; stderr:\n%s", seen, errOut)
		}
		out, err := os.ReadFile(filepath.Join(sub.Dir, "stdout"))
		if err != nil {
			t.Fatal(err)
		}
		nodes := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var node string
			if i := strings.Index(line, "node="); i >= 0 && strings.HasPrefix(line, "hello from ") && strings.HasSuffix(line, " block=1") {
				node = strings.Fields(line[i+len("node="):])[0]
			}
			if node == "" {
				t.Errorf("unexpected stdout line %q", line)
				continue
			}
			nodes[node] = true
		}
		var names []string
		for n := range nodes {
			names = append(names, n)
		}
		sort.Strings(names)
		t.Logf("states %v; pools ran on %v", seen, names)
		if len(names) != 2 {
			t.Errorf("pools ran on nodes %v, want 2 different nodes; stdout:\n%s", names, out)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		sub := block(t, `
[executor]
label = "itest"
[provider]
kind = "slurm"
walltime = "00:05:00"
exclusive = false
`, 2, `sleep 300`)
		id, err := s.Submit(ctx, sub)
		if err != nil {
			t.Fatalf("Submit: %v", err)
		}
		waitFor(t, s, id, func(st providers.State) bool { return st == providers.Running || st.Terminal() }, 60*time.Second)
		if err := s.Cancel(ctx, []string{id}); err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		seen := waitFor(t, s, id, providers.State.Terminal, 60*time.Second)
		t.Logf("states %v", seen)
		if last := seen[len(seen)-1]; last != providers.Cancelled {
			t.Errorf("states %v, want cancelled at the end", seen)
		}
		// Cancelling again, once it has ended, is not an error.
		if err := s.Cancel(ctx, []string{id}); err != nil {
			t.Errorf("second Cancel: %v", err)
		}
	})

	t.Run("bad partition", func(t *testing.T) {
		sub := block(t, "[provider]\nkind = \"slurm\"\npartition = \"no-such-partition\"\nexclusive = false\n", 3, "true")
		_, err := s.Submit(ctx, sub)
		var ce *providers.CommandError
		if !errors.As(err, &ce) || !strings.Contains(ce.Stderr, "partition") {
			t.Fatalf("Submit error %v, want a CommandError with sbatch's stderr about the partition", err)
		}
		t.Logf("as expected: %v", err)
	})

	t.Run("unknown ids", func(t *testing.T) {
		got, err := s.Status(ctx, []string{"987654321", "987654322"})
		if err != nil {
			t.Fatal(err)
		}
		for id, st := range got {
			if st.State != providers.Unknown {
				t.Errorf("job %s: %+v, want unknown", id, st)
			}
		}
		got, err = s.Status(ctx, []string{"987654321"})
		if err != nil || got["987654321"].State != providers.Unknown {
			t.Errorf("one unknown id: %+v, %v", got, err)
		}
	})
}
