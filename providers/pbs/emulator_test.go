package pbs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/htex/htex/config"
	"github.com/htex/htex/internal/execx"
	"github.com/htex/htex/providers"

	"github.com/htex/htex/internal/testenv"
)

// emulator is the PBS emulator of testdata/pbs-emulator, built for one test.
type emulator struct {
	bin, state, work string
	pathEnv          string // the emulator's directory, then the test's PATH
}

// buildEmulator builds the emulator into a temporary directory and links it
// as qsub, qstat, qdel, qrls and mpiexec.
func buildEmulator(t *testing.T) *emulator {
	t.Helper()
	e := &emulator{bin: testenv.BuildPBSEmulator(t), state: t.TempDir(), work: t.TempDir()}
	e.pathEnv = e.bin + string(os.PathListSeparator) + os.Getenv("PATH")
	t.Cleanup(func() { e.drain(t) })
	return e
}

// drain force-deletes the jobs still unfinished and waits for them to end,
// so that no job outlives the test or writes into a removed directory.
func (e *emulator) drain(t *testing.T) {
	r := e.runner()
	ctx := context.Background()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		res, err := r.Run(ctx, "", filepath.Join(e.bin, "qstat"))
		if err != nil {
			t.Errorf("qstat: %v", err)
			return
		}
		var ids []string
		for _, line := range strings.Split(res.Stdout, "\n") {
			if f := strings.Fields(line); len(f) > 0 && strings.HasSuffix(f[0], ".emu-server") {
				ids = append(ids, f[0])
			}
		}
		if len(ids) == 0 {
			return
		}
		_, _ = r.Run(ctx, "", filepath.Join(e.bin, "qdel"), append([]string{"-W", "force"}, ids...)...)
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("PBS emulator jobs still unfinished after the test")
}

// runner is an execx.Exec for the emulator. exec.Command looks commands up
// in this process's PATH, so the test puts the emulator first there too
// (see TestEmulator); the jobs inherit the PATH given here.
func (e *emulator) runner(extraEnv ...string) execx.Exec {
	return execx.Exec{
		Timeout: 30 * time.Second,
		Dir:     e.work,
		Env: append([]string{
			"PATH=" + e.pathEnv,
			"PBS_EMULATOR_STATE=" + e.state,
			"PBS_EMULATOR_START_DELAY=300ms",
			"PBS_EMULATOR_KILL_DELAY=1s",
		}, extraEnv...),
	}
}

// script writes a job script into the work directory.
func (e *emulator) script(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(e.work, name+".sh")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitTerminal polls Status until the job is terminal and returns the last
// status and every state seen on the way.
func waitTerminal(t *testing.T, p *PBS, id string, timeout time.Duration) (providers.Status, []providers.State) {
	t.Helper()
	var seen []providers.State
	deadline := time.Now().Add(timeout)
	for {
		m, err := p.Status(context.Background(), []string{id})
		if err != nil {
			t.Fatalf("Status(%s): %v", id, err)
		}
		st := m[id]
		if len(seen) == 0 || seen[len(seen)-1] != st.State {
			seen = append(seen, st.State)
		}
		if st.State.Terminal() {
			return st, seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not terminal after %v: states %v, last %+v", id, timeout, seen, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitState polls Status until the job is in state want.
func waitState(t *testing.T, p *PBS, id string, want providers.State, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m, err := p.Status(context.Background(), []string{id})
		if err != nil {
			t.Fatalf("Status(%s): %v", id, err)
		}
		if m[id].State == want {
			return
		}
		if m[id].State.Terminal() || time.Now().After(deadline) {
			t.Fatalf("%s: %+v, waited for %s", id, m[id], want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func submit(t *testing.T, p *PBS, path string) string {
	t.Helper()
	id, err := p.Submit(context.Background(), providers.Submission{BlockID: 1, ScriptPath: path, Dir: filepath.Dir(path), Nodes: 1})
	if err != nil {
		t.Fatalf("Submit(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = p.Cancel(context.Background(), []string{id}) })
	return id
}

// TestEmulator runs the provider against the PBS emulator: real processes,
// real qsub/qstat/qdel command lines, no PBS server needed.
func TestEmulator(t *testing.T) {
	e := buildEmulator(t)
	t.Setenv("PATH", e.pathEnv)
	p := New(config.Provider{Kind: "pbs", CmdTimeout: config.Duration(30 * time.Second)}, e.runner())

	t.Run("multi-node job runs mpiexec once per node and completes", func(t *testing.T) {
		t.Parallel()
		// The script lives in a block folder of its own: qsub must run there
		// (PBS_O_WORKDIR), and the default output file lands there.
		blockDir := filepath.Join(e.work, "blocks", "1")
		if err := os.MkdirAll(blockDir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := e.script(t, "blocks/1/submit", `#!/bin/bash
#PBS -N htex-emu-multinode
#PBS -l select=2:ncpus=4
#PBS -l walltime=00:01:00
#PBS -l place=scatter
#PBS -A MyProject
#PBS -q debug
echo "jobid=$PBS_JOBID workdir=$PBS_O_WORKDIR queue=$PBS_QUEUE"
cat "$PBS_NODEFILE"
mpiexec -n 2 --ppn 1 --hostfile "$PBS_NODEFILE" sh -c 'echo "rank $PMI_RANK on $HTEX_NODE_NAME"'
sleep 1
`)
		id := submit(t, p, path)
		if !strings.HasSuffix(id, ".emu-server") {
			t.Errorf("job id %q", id)
		}
		st, seen := waitTerminal(t, p, id, 20*time.Second)
		if st.State != providers.Completed || st.ExitCode != 0 {
			t.Fatalf("final status %+v (states %v)", st, seen)
		}
		if !slices.Contains(seen, providers.Running) {
			t.Errorf("never saw running: %v", seen)
		}
		seq := strings.TrimSuffix(id, ".emu-server")
		b, err := os.ReadFile(filepath.Join(blockDir, "htex-emu-multinode.o"+seq))
		if err != nil {
			t.Fatal(err)
		}
		n0, n1 := "emu-node-"+seq+"-0", "emu-node-"+seq+"-1"
		want := fmt.Sprintf("jobid=%s workdir=%s queue=debug\n%s\n%s\n", id, blockDir, n0, n1)
		got := string(b)
		if !strings.HasPrefix(got, want) {
			t.Errorf("job output:\n%s\nwant it to start with:\n%s", got, want)
		}
		for _, line := range []string{"rank 0 on " + n0, "rank 1 on " + n1} {
			if !strings.Contains(got, line+"\n") {
				t.Errorf("job output lacks %q:\n%s", line, got)
			}
		}
	})

	t.Run("qdel of a running job ends cancelled", func(t *testing.T) {
		t.Parallel()
		id := submit(t, p, e.script(t, "cancel-running", "#!/bin/bash\n#PBS -l walltime=00:05:00\nsleep 300\n"))
		waitState(t, p, id, providers.Running, 10*time.Second)
		if err := p.Cancel(context.Background(), []string{id}); err != nil {
			t.Fatal(err)
		}
		st, seen := waitTerminal(t, p, id, 10*time.Second)
		if st.State != providers.Cancelled || st.ExitCode != 271 {
			t.Fatalf("final status %+v (states %v), want cancelled with Exit_status 271", st, seen)
		}
		if err := p.Cancel(context.Background(), []string{id}); err != nil {
			t.Errorf("cancelling a finished job again: %v", err)
		}
	})

	t.Run("qdel of a queued job ends cancelled", func(t *testing.T) {
		t.Parallel()
		slow := New(config.Provider{Kind: "pbs"}, e.runner("PBS_EMULATOR_START_DELAY=30s"))
		id := submit(t, slow, e.script(t, "cancel-queued", "#!/bin/bash\nsleep 300\n"))
		waitState(t, slow, id, providers.Pending, 5*time.Second)
		if err := slow.Cancel(context.Background(), []string{id}); err != nil {
			t.Fatal(err)
		}
		st, seen := waitTerminal(t, slow, id, 10*time.Second)
		if st.State != providers.Cancelled {
			t.Fatalf("final status %+v (states %v), want cancelled", st, seen)
		}
	})

	t.Run("walltime exceeded ends timeout", func(t *testing.T) {
		t.Parallel()
		errFile := filepath.Join(e.work, "walltime.err")
		id := submit(t, p, e.script(t, "walltime", "#!/bin/bash\n#PBS -l walltime=00:00:02\n#PBS -e "+errFile+"\nsleep 30\n"))
		st, seen := waitTerminal(t, p, id, 20*time.Second)
		if st.State != providers.Timeout || st.ExitCode != -29 {
			t.Fatalf("final status %+v (states %v), want timeout with Exit_status -29", st, seen)
		}
		if b, _ := os.ReadFile(errFile); !strings.Contains(string(b), "=>> PBS: job killed: walltime") {
			t.Errorf("job stderr %q lacks the walltime message", b)
		}
	})

	t.Run("exit 3 ends failed", func(t *testing.T) {
		t.Parallel()
		id := submit(t, p, e.script(t, "exit3", "#!/bin/bash\necho failing >&2\nexit 3\n"))
		st, seen := waitTerminal(t, p, id, 20*time.Second)
		if st.State != providers.Failed || st.ExitCode != 3 {
			t.Fatalf("final status %+v (states %v), want failed with Exit_status 3", st, seen)
		}
	})

	t.Run("held job waits for qrls", func(t *testing.T) {
		t.Parallel()
		id := submit(t, p, e.script(t, "held", "#!/bin/bash\n#PBS -h\ntrue\n"))
		waitState(t, p, id, providers.Held, 5*time.Second)
		time.Sleep(time.Second) // past the start delay: still held
		waitState(t, p, id, providers.Held, time.Second)
		if res, err := e.runner().Run(context.Background(), "", "qrls", id); err != nil || res.ExitCode != 0 {
			t.Fatalf("qrls: %+v, %v", res, err)
		}
		if st, seen := waitTerminal(t, p, id, 10*time.Second); st.State != providers.Completed {
			t.Fatalf("final status %+v (states %v)", st, seen)
		}
	})

	t.Run("unknown ids are unknown, not an error", func(t *testing.T) {
		t.Parallel()
		id := submit(t, p, e.script(t, "known", "#!/bin/bash\nsleep 2\n"))
		m, err := p.Status(context.Background(), []string{"424242.emu-server", id, "424243"})
		if err != nil {
			t.Fatal(err)
		}
		if m["424242.emu-server"].State != providers.Unknown || m["424243"].State != providers.Unknown {
			t.Errorf("unknown ids: %+v", m)
		}
		if s := m[id].State; s != providers.Pending && s != providers.Running {
			t.Errorf("%s: %+v", id, m[id])
		}
	})

	t.Run("mpiexec forwards SIGTERM to every copy", func(t *testing.T) {
		t.Parallel()
		hosts := filepath.Join(e.work, "hosts")
		if err := os.WriteFile(hosts, []byte("n1\nn1\nn2\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(filepath.Join(e.bin, "mpiexec"), "-n", "2", "--ppn", "1", "--hostfile", hosts, "--env", "GREETING=hi",
			"sh", "-c", `trap 'echo "term $PMI_RANK $HTEX_NODE_NAME $GREETING"; exit 7' TERM; echo ready; while :; do sleep 0.05; done`)
		var out lockedBuffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		for deadline := time.Now().Add(5 * time.Second); strings.Count(out.String(), "ready") < 2; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("copies did not start: %q", out.String())
			}
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil { // to mpiexec only, not its group
			t.Fatal(err)
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 7 {
			t.Errorf("mpiexec ended with %v, want exit 7", err)
		}
		for _, line := range []string{"term 0 n1 hi", "term 1 n2 hi"} {
			if !strings.Contains(out.String(), line) {
				t.Errorf("output %q lacks %q", out.String(), line)
			}
		}
	})

	t.Run("mpiexec refuses more ranks than nodes allow", func(t *testing.T) {
		t.Parallel()
		hosts := filepath.Join(e.work, "hosts2")
		if err := os.WriteFile(hosts, []byte("n1\nn2\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(filepath.Join(e.bin, "mpiexec"), "-n", "3", "--ppn", "1", "--hostfile", hosts, "true").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "need 3 nodes, have 2") {
			t.Errorf("mpiexec -n 3 on 2 hosts: %v, %s", err, out)
		}
	})

	t.Run("qsub refusal is a CommandError with its stderr", func(t *testing.T) {
		t.Parallel()
		strict := New(config.Provider{Kind: "pbs"}, e.runner("PBS_EMULATOR_QUEUES=debug,prod"))
		_, err := strict.Submit(context.Background(), providers.Submission{BlockID: 9, ScriptPath: e.script(t, "badqueue", "#!/bin/bash\n#PBS -q nosuchqueue\ntrue\n")})
		var ce *providers.CommandError
		if !errors.As(err, &ce) || ce.ExitCode != 170 || ce.Stderr != "qsub: Unknown queue" {
			t.Fatalf("Submit error = %#v", err)
		}
	})
}

// lockedBuffer is an io.Writer safe to read while a command writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
