package e2e

// A task that runs MPICH's mpiexec inside a PBS block (docs/guide.md, "Tasks
// that run MPI or srun"): the ranks start on the block's nodes through PBS's
// task manager (pbs_tmrsh), not ssh, with nothing said by the user.

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
)

// requireHydra skips (fails in CI) unless mpiexec on the jobs' PATH
// (/bin:/usr/bin, PBS_HOME/pbs_environment) is MPICH's hydra and mpicc is
// there to build the test's MPI program: Debian's mpich and libmpich-dev
// (scripts/pbs-cluster.sh installs them).
func requireHydra(t *testing.T) {
	t.Helper()
	out, err := exec.Command("/usr/bin/mpiexec", "-info").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "HYDRA build details") {
		testenv.SkipOrFail(t, "/usr/bin/mpiexec is not MPICH's hydra (%v: %.200s); install Debian's mpich", err, out)
	}
	if _, err := exec.LookPath("mpicc"); err != nil {
		testenv.SkipOrFail(t, "no mpicc (%v); install Debian's libmpich-dev", err)
	}
}

// openpbsMPIBlock starts a daemon on the local OpenPBS whose one block has
// two nodes, waits for both pools, and returns the daemon, the block's
// hosts and the MPI test programs (mpiPrograms).
func openpbsMPIBlock(t *testing.T, label string) (d *testenv.Daemon, hosts []string, ranks, hello string) {
	t.Helper()
	env := requireOpenPBS(t)
	requireHydra(t)
	ranks, hello = mpiPrograms(t)
	d = startOpenPBSDaemon(t, env, openpbsConfig(openpbsLabel(label), 2, 1, 1, "00:10:00", "", "", `kind = "none"`))
	st := openpbsWait(t, d, env, "two pools", 3*time.Minute, func(s testenv.Status) bool { return len(s.Pools) == 2 })
	jobID := st.Blocks[0].JobID
	return d, openpbsHosts(openpbsJobs(t, env, jobID)[jobID].ExecHost), ranks, hello
}

// mpiPrograms writes rankScript and builds mpiHello (mpicc) in a folder
// every node can read, and returns their paths.
func mpiPrograms(t *testing.T) (ranks, hello string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ranks = filepath.Join(dir, "rank.sh")
	if err := os.WriteFile(ranks, []byte(rankScript), 0o755); err != nil {
		t.Fatal(err)
	}
	hello = filepath.Join(dir, "hello")
	if err := os.WriteFile(hello+".c", []byte(mpiHello), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mpicc", "-o", hello, hello+".c").CombinedOutput(); err != nil {
		t.Fatalf("mpicc: %v\n%s", err, out)
	}
	return ranks, hello
}

// mpiHello sums the ranks with MPI_Allreduce: it ends only when every rank
// joined the job through hydra's proxies (PMI) and they exchanged data.
const mpiHello = `#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv) {
	int rank, size, sum = 0;
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
	printf("mpi rank %d of %d sum %d\n", rank, size, sum);
	MPI_Finalize();
	return 0;
}
`

// rankScript prints, for each rank, the node whose pbs_mom started it: the
// nearest pbs_mom among its ancestors, named by the PBS_MOM_NODE_NAME of
// that mom's configuration file (scripts/pbs-cluster.sh runs one mom per
// node on this one machine, so `hostname` would print the same name for
// every rank; on a real cluster it is the rank's host).
const rankScript = `#!/bin/sh
p=$$
while [ "$p" -gt 1 ] && [ "$(cat /proc/$p/comm)" != pbs_mom ]; do
	p=$(sed 's/.*) [A-Za-z] \([0-9]*\) .*/\1/' /proc/$p/stat)
done
node=none
if [ "$p" -gt 1 ]; then
	conf=$(tr '\0' '\n' < /proc/$p/environ | sed -n 's/^PBS_CONF_FILE=//p')
	node=$(sed -n 's/^PBS_MOM_NODE_NAME=//p' "${conf:-/etc/pbs.conf}")
fi
echo "rank $PMI_RANK of $PMI_SIZE node $node"
`

// TestOpenPBSTaskRunsMpiexec: in a two-node PBS block whose pools pbsdsh
// started, a task runs `mpiexec -n 2 -ppn 1 <program>` as it would on a
// login node, with no launcher option: one rank runs on each node of the
// block, each started by that node's pbs_mom (a task of the job, through
// pbs_tmrsh), an MPI program's two ranks exchange data, and the task
// succeeds. Then four tasks at once, two on each node's pool, do the same:
// mpiexec works from the pool on a sister node as from the first node's.
func TestOpenPBSTaskRunsMpiexec(t *testing.T) {
	d, hosts, ranks, hello := openpbsMPIBlock(t, "mpi")

	// mpiexec waits for ranks it could not start (an ssh refused): the
	// time limit ends such a task.
	job := d.Submit("--timeout", "60s", "--", "sh", "-c",
		`mpiexec -n 2 -ppn 1 "$0" && mpiexec -n 2 -ppn 1 "$1"`, ranks, hello)
	if code := d.WaitJob(job); code != 0 {
		t.Errorf("wait: exit %d", code)
	}
	r := d.Results(job)[0]
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	var rankNodes, nodes, mpi []string
	for _, line := range lines {
		// "rank <r> of 2 node <node>" (rank.sh), "mpi rank <r> of 2 sum 1" (hello)
		if f := strings.Fields(line); len(f) == 6 && f[0] == "rank" && f[2] == "of" && f[3] == "2" && f[4] == "node" {
			rankNodes, nodes = append(rankNodes, f[1]), append(nodes, f[5])
		} else if strings.HasPrefix(line, "mpi ") {
			mpi = append(mpi, line)
		}
	}
	slices.Sort(rankNodes)
	slices.Sort(nodes)
	slices.Sort(mpi)
	if r.State != "succeeded" || len(lines) != 4 || !slices.Equal(rankNodes, []string{"0", "1"}) || !slices.Equal(nodes, hosts) ||
		!slices.Equal(mpi, []string{"mpi rank 0 of 2 sum 1", "mpi rank 1 of 2 sum 1"}) {
		t.Fatalf("task on %s: state %s exit %d error %q\nstdout %q: want ranks 0 and 1 of 2, one on each of %v, then the MPI program's two ranks, sum 1\nstderr %q\n%s",
			r.Node, r.State, r.ExitCode, r.Error, r.Stdout, hosts, r.Stderr, slurmBlockStderr(d))
	}
	t.Logf("task on %s (block on %v): %q", r.Node, hosts, lines)

	// From every pool: four tasks on the block's four slots (two per node)
	// each wait until all four run, so that two run on each node, then
	// start their ranks; a task on the second node spawns through its own
	// pbs_mom, which forwards to the first node's.
	gate := t.TempDir()
	job = d.Submit("--timeout", "60s", "--env", "GATE="+gate, "--array", "1-4", "--", "sh", "-c",
		`touch "$GATE/{}"; i=0; while [ "$(ls "$GATE" | wc -l)" -lt 4 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
mpiexec -n 2 -ppn 1 "$0"`, ranks)
	if code := d.WaitJob(job); code != 0 {
		t.Errorf("wait: exit %d", code)
	}
	// The same placement as the first task's: rank 0 on the first host of
	// $PBS_NODEFILE, rank 1 on the second.
	want := slices.DeleteFunc(slices.Clone(lines), func(l string) bool { return !strings.HasPrefix(l, "rank ") })
	slices.Sort(want)
	taskNodes := map[string]int{}
	for _, r := range d.Results(job) {
		taskNodes[r.Node]++
		got := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		slices.Sort(got)
		if r.State != "succeeded" || !slices.Equal(got, want) {
			t.Errorf("task %d on %s: state %s exit %d error %q\nstdout %q, want %q\nstderr %q",
				r.TaskID, r.Node, r.State, r.ExitCode, r.Error, r.Stdout, want, r.Stderr)
		}
	}
	if len(taskNodes) != 2 || taskNodes[hosts[0]] != 2 || taskNodes[hosts[1]] != 2 {
		t.Errorf("tasks ran on %v, want two on each of %v", taskNodes, hosts)
	}
	t.Logf("four tasks, by node: %v", taskNodes)
}
