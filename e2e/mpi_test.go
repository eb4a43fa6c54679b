package e2e

// Multi-node (MPI) tasks, submit --nodes N (docs/mpi-tasks.md): a task runs
// across N whole nodes of one block, starting its ranks with
// $HTEX_MPI_PREFIX, and the nodes return to ordinary work after it.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
)

// TestSlurmMPITask: on the local four-node Slurm, a --nodes 2 task whose
// command is `$HTEX_MPI_PREFIX` followed by a command printing its node
// prints the block's two nodes, while an ordinary task that was running
// on one of them finished first; then ordinary tasks run on both nodes
// again.
func TestSlurmMPITask(t *testing.T) {
	requireSlurm(t)
	d := startSlurmDaemon(t, slurmConfig(2, 1, 1, "", "", `kind = "none"`))
	st := slurmWait(t, d, "two pools", 2*time.Minute, func(s slurmStatus) bool { return len(s.Pools) == 2 })
	var nodes []string
	for _, p := range st.Pools {
		nodes = append(nodes, p.Node)
	}
	slices.Sort(nodes)

	// An ordinary task holds a slot when the MPI task comes: the MPI task
	// waits for it, and status says so.
	busy := d.Submit("--timeout", "90s", "--", "sleep", "5")
	slurmWait(t, d, "the ordinary task to run", time.Minute, func(s slurmStatus) bool { return s.Running == 1 })
	mpi := d.Submit("--nodes", "2", "--timeout", "90s", "--", "sh", "-c",
		`$HTEX_MPI_PREFIX sh -c 'echo "rank $SLURM_PROCID of $SLURM_NTASKS on $SLURMD_NODENAME"'; echo "prefix: $HTEX_MPI_PREFIX"; echo "nodes: $HTEX_MPI_NODELIST $HTEX_NUM_NODES $HTEX_RANKS_PER_NODE"`)
	st = slurmWait(t, d, "the MPI task to hold both pools", time.Minute, func(s slurmStatus) bool {
		return len(s.Waiting) == 1 && strings.Contains(s.Waiting[0], "holds 2 pools of block 1; waiting for their 1 running tasks")
	})
	t.Logf("status: waiting: %s", st.Waiting[0])
	if code := d.WaitJob(mpi); code != 0 {
		t.Errorf("wait: exit %d", code)
	}
	if code := d.WaitJob(busy); code != 0 {
		t.Errorf("wait for the ordinary task: exit %d", code)
	}
	r := d.Results(mpi)[0]
	var ranks, on []string
	prefix := ""
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		switch f := strings.Fields(l); {
		case len(f) == 6 && f[0] == "rank" && f[3] == "2":
			ranks, on = append(ranks, f[1]), append(on, f[5])
		case strings.HasPrefix(l, "prefix: "):
			prefix = strings.TrimPrefix(l, "prefix: ")
		}
	}
	slices.Sort(ranks)
	slices.Sort(on)
	if r.State != "succeeded" || !slices.Equal(ranks, []string{"0", "1"}) || !slices.Equal(on, nodes) {
		t.Fatalf("MPI task on %s: state %s exit %d error %q\nstdout %q: want ranks 0 and 1 of 2, one on each of %v\nstderr %q\n%s",
			r.Node, r.State, r.ExitCode, r.Error, r.Stdout, nodes, r.Stderr, slurmBlockStderr(d))
	}
	if !strings.HasPrefix(prefix, "srun -N 2 -n 2 --ntasks-per-node 1 --nodelist "+r.Node+",") || !strings.HasSuffix(prefix, " --overlap") {
		t.Errorf("HTEX_MPI_PREFIX %q: want srun for both nodes, the task's own (%s) first", prefix, r.Node)
	}
	if strings.Contains(r.Stderr, "step creation temporarily disabled") {
		t.Errorf("the ranks' step waited for resources:\n%s", r.Stderr)
	}
	t.Logf("MPI task on %s: %q", r.Node, r.Stdout)

	// Both nodes take ordinary tasks again: eight tasks on four slots,
	// each holding its slot until all have started, so that every slot of
	// both pools runs two of them.
	gate := t.TempDir()
	job := d.Submit("--timeout", "90s", "--env", "GATE="+gate, "--array", "1-8", "--", "sh", "-c",
		`touch "$GATE/{}"; i=0; while [ "$(ls "$GATE" | wc -l)" -lt 4 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done`)
	if code := d.WaitJob(job); code != 0 {
		t.Errorf("wait: exit %d", code)
	}
	byNode := map[string]int{}
	for _, r := range d.Results(job) {
		if r.State != "succeeded" {
			t.Errorf("task %d: %s %q", r.TaskID, r.State, r.Error)
		}
		byNode[r.Node]++
	}
	if len(byNode) != 2 || byNode[nodes[0]] == 0 || byNode[nodes[1]] == 0 {
		t.Errorf("ordinary tasks after the MPI task ran on %v, want both of %v", byNode, nodes)
	}
	if st := d.Status(); len(st.Waiting) != 0 {
		t.Errorf("status still says tasks wait: %q", st.Waiting)
	}
}

// TestMPITaskRefusedAtSubmit: a --nodes 2 task is refused at submit when a
// block has one node, and when the launcher cannot start ranks on chosen
// nodes; the message names the values. No block needs to start.
func TestMPITaskRefusedAtSubmit(t *testing.T) {
	testenv.Integration(t)
	for _, c := range []struct {
		name, cfg string
		want      []string
	}{
		{"Slurm block of one node", slurmConfig(1, 0, 1, "", "", `kind = "none"`),
			[]string{"--nodes 2 exceeds provider.nodes_per_block 1"}},
		{"local launcher single", `
[executor]
label = "mpi-refused"
[provider]
kind = "local"
init_blocks = 0
`, []string{"--nodes 2 exceeds provider.nodes_per_block 1", "launcher single starts one pool"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := testenv.StartDaemon(t, c.cfg)
			out, errOut, code := d.Run("submit", "--nodes", "2", "--", "hostname")
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q", w)
				}
			}
			if code == 0 || out != "" {
				t.Errorf("submit --nodes 2: exit %d, stdout %q, stderr %q: want a refusal", code, out, errOut)
			}
			if st := d.Status(); st.Jobs != 0 {
				t.Errorf("%d jobs after a refused submit, want 0", st.Jobs)
			}
		})
	}
}

// TestPBSEmulatorMPITask: in a two-node PBS block of the emulator, whose
// mpiexec (PALS style) started the pools, a --nodes 2 --ranks-per-node 2
// task runs `$HTEX_MPI_PREFIX` as mpiexec -n 4 --ppn 2 --hosts <both
// nodes>: two ranks on each node of the block.
func TestPBSEmulatorMPITask(t *testing.T) {
	testenv.Integration(t)
	e := buildPBSEmulator(t)
	d := testenv.StartDaemonEnv(t, pbsConfig(1, "simple"), e.env()...)
	st := pbsWaitStatus(t, d, "two pools of block 1 registered", func(st pbsStatus) bool {
		return len(st.Pools) == 2 && len(st.Blocks) == 1 && st.Blocks[0].JobID != ""
	})
	nodes := emuNodes(st.Blocks[0].JobID, 2)
	job := d.Submit("--nodes", "2", "--ranks-per-node", "2", "--timeout", "60s", "--", "sh", "-c",
		`$HTEX_MPI_PREFIX sh -c 'echo "rank $PALS_RANKID on $HTEX_NODE_NAME"'; echo "prefix: $HTEX_MPI_PREFIX"`)
	if code := d.WaitJob(job); code != 0 {
		t.Errorf("wait: exit %d", code)
	}
	r := d.Results(job)[0]
	var ranks []string
	prefix := ""
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if p, ok := strings.CutPrefix(l, "prefix: "); ok {
			prefix = p
			continue
		}
		ranks = append(ranks, l)
	}
	slices.Sort(ranks)
	other := nodes[0]
	if r.Node == nodes[0] {
		other = nodes[1]
	}
	// --hosts lists the task's node first: ranks 0 and 1 run there.
	want := []string{"rank 0 on " + r.Node, "rank 1 on " + r.Node, "rank 2 on " + other, "rank 3 on " + other}
	slices.Sort(want)
	if r.State != "succeeded" || !slices.Equal(ranks, want) || prefix != "mpiexec -n 4 --ppn 2 --hosts "+r.Node+","+other {
		t.Errorf("MPI task on %s: state %s exit %d error %q\nranks %q, want %q\nprefix %q\nstderr %q\n%s",
			r.Node, r.State, r.ExitCode, r.Error, ranks, want, prefix, r.Stderr, testenv.Tail(d.Log(), 30))
	}
}

// TestOpenPBSMPITask: on the local four-node OpenPBS, in a two-node block
// whose pools pbsdsh started, a --nodes 2 task runs `$HTEX_MPI_PREFIX
// <program>`, which is MPICH's mpiexec with the block's two hosts: one
// rank on each node, started by that node's pbs_mom (through pbs_tmrsh,
// as the pools' environment tells hydra), and an MPI program's ranks
// exchange data.
func TestOpenPBSMPITask(t *testing.T) {
	d, hosts, ranks, hello := openpbsMPIBlock(t, "mpitask")

	job := d.Submit("--nodes", "2", "--timeout", "60s", "--", "sh", "-c", `$HTEX_MPI_PREFIX "$0" && $HTEX_MPI_PREFIX "$1"`, ranks, hello)
	if code := d.WaitJob(job); code != 0 {
		t.Errorf("wait: exit %d", code)
	}
	r := d.Results(job)[0]
	var rankNodes, mpi []string
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		// "rank <r> of 2 node <node>" (rank.sh), "mpi rank <r> of 2 sum 1" (hello)
		if f := strings.Fields(line); len(f) == 6 && f[0] == "rank" && f[3] == "2" {
			rankNodes = append(rankNodes, f[1]+"@"+f[5])
		} else if strings.HasPrefix(line, "mpi ") {
			mpi = append(mpi, line)
		}
	}
	slices.Sort(mpi)
	other := hosts[0]
	if r.Node == hosts[0] {
		other = hosts[1]
	}
	// The task's own node comes first in --hosts: rank 0 runs there.
	want := []string{"0@" + r.Node, "1@" + other}
	slices.Sort(rankNodes)
	if r.State != "succeeded" || !slices.Equal(rankNodes, want) || !slices.Equal(mpi, []string{"mpi rank 0 of 2 sum 1", "mpi rank 1 of 2 sum 1"}) {
		t.Fatalf("task on %s: state %s exit %d error %q\nstdout %q: want ranks %v, then the MPI program's two ranks, sum 1\nstderr %q\n%s",
			r.Node, r.State, r.ExitCode, r.Error, r.Stdout, want, r.Stderr, slurmBlockStderr(d))
	}
	t.Logf("task on %s (block on %v): %q", r.Node, hosts, r.Stdout)
}

// poolOnNode is the pid of the run's pool process whose HTEX_NODE_NAME is
// node (the PBS emulator's mpiexec names each rank's node so), or 0.
func poolOnNode(t *testing.T, runDir, node string) int {
	t.Helper()
	for _, pid := range secProcesses(t, "worker", runDir) {
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if slices.Contains(strings.Split(string(env), "\x00"), "HTEX_NODE_NAME="+node) {
			return pid
		}
	}
	return 0
}

// TestPBSEmulatorMPITaskLostNode: a pool of a running two-node task that
// is killed (not the one running the task) takes the attempt with it: the
// task is stopped, counted as lost, and runs again on two pools of the
// other block, only after its first attempt has stopped; it succeeds with
// two attempts.
func TestPBSEmulatorMPITaskLostNode(t *testing.T) {
	testenv.Integration(t)
	e := buildPBSEmulator(t)
	d := testenv.StartDaemonEnv(t, pbsConfig(2, "none"), e.env()...)
	pbsWaitStatus(t, d, "four pools of two blocks", func(st pbsStatus) bool { return len(st.Pools) == 4 })
	gate := t.TempDir()
	job := d.Submit("--nodes", "2", "--timeout", "120s", "--env", "GATE="+gate, "--", "sh", "-c", `
if [ "$HTEX_ATTEMPT" = 1 ]; then
	echo "$HTEX_MPI_NODELIST" > "$GATE/nodes"
	trap 'touch "$GATE/stopped"; exit 143' TERM
	$HTEX_MPI_PREFIX sleep 300 &
	wait
	exit 1
fi
[ -e "$GATE/stopped" ] && echo "first attempt had stopped"
$HTEX_MPI_PREFIX sh -c 'echo "rank on $HTEX_NODE_NAME"'`)
	var nodes []string
	for deadline := time.Now().Add(time.Minute); len(nodes) != 2; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the first attempt did not start:\n%s", testenv.Tail(d.Log(), 30))
		}
		b, _ := os.ReadFile(filepath.Join(gate, "nodes"))
		nodes = strings.Split(strings.TrimSpace(string(b)), ",")
		if len(nodes) == 1 && nodes[0] == "" {
			nodes = nil
		}
	}
	victim := poolOnNode(t, d.RunDir, nodes[1])
	if victim == 0 {
		t.Fatalf("no pool process on node %s", nodes[1])
	}
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := d.WaitJob(job); code != 0 {
		t.Errorf("wait: exit %d", code)
	}
	r := d.Results(job)[0]
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	slices.Sort(lines)
	if r.State != "succeeded" || r.Attempts != 2 || len(lines) != 3 || lines[0] != "first attempt had stopped" ||
		!strings.HasPrefix(lines[1], "rank on ") || lines[1] == lines[2] || slices.Contains(nodes, strings.TrimPrefix(lines[1], "rank on ")) {
		t.Errorf("task: state %s attempts %d error %q\nstdout %q: want the second attempt, after the first stopped, on two other nodes than %v\nstderr %q\n%s",
			r.State, r.Attempts, r.Error, r.Stdout, nodes, r.Stderr, testenv.Tail(d.Log(), 30))
	}
	if log := d.Log(); !strings.Contains(log, "a node of a running multi-node task was lost") {
		t.Errorf("the daemon log does not say the task was stopped for its lost node:\n%s", testenv.Tail(log, 30))
	}
}
