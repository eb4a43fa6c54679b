package e2e

// What a pool gets of its Slurm node: every CPU, whatever srun would bind
// by default (the local cluster binds as OLCF Frontier does,
// --cpu-bind=threads), and room for the job steps its tasks start.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
)

// TestSlurmTaskRunsSrun: tasks run `srun` inside their block, as every
// wrapper of an MPI code does. Their steps start at once, beside the pool's
// step and beside each other's, and do not wait for resources: the pool's
// step would otherwise hold every CPU of the node, and a task's step would
// wait until its time limit.
func TestSlurmTaskRunsSrun(t *testing.T) {
	requireSlurm(t)
	d := startSlurmDaemon(t, slurmConfig(1, 1, 1, "", "cores_per_node = 2", `kind = "none"`))
	slurmWait(t, d, "one pool", 2*time.Minute, func(s slurmStatus) bool { return len(s.Pools) == 1 })
	// Four tasks on the pool's two slots: two steps at a time on one node.
	job := d.Submit("--timeout", "90s", "--array", "1-4", "--", "sh", "-c",
		`srun -n 1 hostname && srun -n 1 sh -c 'echo "step $SLURM_STEP_ID on $SLURMD_NODENAME"; sleep 1'`)
	if code := d.WaitJob(job); code != 0 {
		t.Errorf("wait: exit %d", code)
	}
	host, _ := os.Hostname()
	for _, r := range d.Results(job) {
		lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		if r.State != "succeeded" || len(lines) != 2 || lines[0] != host || !strings.HasPrefix(lines[1], "step ") {
			t.Errorf("task %d: state %s exit %d error %q\nstdout %q\nstderr %q\n%s", r.TaskID, r.State, r.ExitCode, r.Error,
				r.Stdout, r.Stderr, slurmBlockStderr(d))
			continue
		}
		if lines[1] == "step 0 on "+r.Node || !strings.HasSuffix(lines[1], " on "+r.Node) {
			t.Errorf("task %d on %s: %q, want a step of its own on its node", r.TaskID, r.Node, lines[1])
		}
		// srun says so when a step waits for resources.
		if strings.Contains(r.Stderr, "step creation temporarily disabled") {
			t.Errorf("task %d: its step waited for resources:\n%s", r.TaskID, r.Stderr)
		}
	}
}

// TestSlurmTaskStepLikeBatch: a task's multi-node step places and binds
// its ranks as the same srun in the batch script would (block
// distribution, the partition's --cpu-bind=threads), not as the pool's own
// step was started (one task per node, so cyclic, and --cpu-bind=none).
func TestSlurmTaskStepLikeBatch(t *testing.T) {
	requireSlurm(t)
	cfg := slurmConfig(2, 1, 1, "", "", `kind = "none"`)
	d := startSlurmDaemon(t, strings.Replace(cfg, "exclusive = false", "exclusive = true", 1))
	slurmWait(t, d, "two pools", 2*time.Minute, func(s slurmStatus) bool { return len(s.Pools) == 2 })
	job := d.Submit("--timeout", "90s", "--", "sh", "-c",
		`srun -N 2 -n 4 sh -c 'echo "$SLURM_PROCID $SLURMD_NODENAME $SLURM_CPU_BIND_TYPE"' | sort`)
	if code := d.WaitJob(job); code != 0 {
		t.Errorf("wait: exit %d", code)
	}
	r := d.Results(job)[0]
	var nodes []string
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("task output %q (stderr %q): want 4 lines of rank, node, binding", r.Stdout, r.Stderr)
		}
		nodes = append(nodes, f[1])
		if !strings.Contains(f[2], "mask_cpu") {
			t.Errorf("rank %s: SLURM_CPU_BIND_TYPE %q, want the partition's binding (mask_cpu), not none", f[0], f[2])
		}
	}
	if len(nodes) != 4 || nodes[0] != nodes[1] || nodes[2] != nodes[3] || nodes[0] == nodes[2] {
		t.Errorf("ranks 0-3 on %v: want block distribution (0,1 on one node, 2,3 on the other)\nstderr %q", nodes, r.Stderr)
	}
}

// TestSlurmPoolGetsWholeNode: the pool's CPU mask is its node's, so two
// slots pinned to one CPU each run side by side; and a pool that a launcher
// option binds to one CPU (--cpu-bind=threads, srun's default here) says
// which launcher options give it the whole node instead of starting short.
func TestSlurmPoolGetsWholeNode(t *testing.T) {
	requireSlurm(t)
	t.Run("default launcher", func(t *testing.T) {
		// The whole node, and no cores_per_node: the pool counts the CPUs
		// of its mask (HTEX_CORES would override that count).
		cfg := slurmConfig(1, 1, 1, `cpu_affinity = "list:0:1"`, "", `kind = "none"`)
		d := startSlurmDaemon(t, strings.Replace(cfg, "exclusive = false", "exclusive = true", 1))
		st := slurmWait(t, d, "one pool", 2*time.Minute, func(s slurmStatus) bool { return len(s.Pools) == 1 })
		if st.Pools[0].Slots != 2 {
			t.Errorf("pool %+v: want 2 slots", st.Pools[0])
		}
		job := d.Submit("--array", "1-2", "--", "sh", "-c", `grep Cpus_allowed_list /proc/self/status | cut -f2`)
		if code := d.WaitJob(job); code != 0 {
			t.Fatalf("wait: exit %d\n%s", code, slurmBlockStderr(d))
		}
		seen := map[string]bool{}
		for _, r := range d.Results(job) {
			seen[strings.TrimSpace(r.Stdout)] = true
		}
		// Which slot runs which task is not fixed; both CPUs may show.
		for l := range seen {
			if l != "0" && l != "1" {
				t.Errorf("a task ran with Cpus_allowed_list %q, want its slot's CPU 0 or 1", l)
			}
		}
	})
	t.Run("pool bound to one CPU", func(t *testing.T) {
		// The whole node (exclusive, no cores_per_node: its HTEX_CORES
		// would override the count), then srun's binding of this cluster.
		cfg := slurmConfig(1, 1, 1, `cpu_affinity = "list:0:1"`, `launcher_options = "--cpu-bind=threads"`,
			"kind = \"simple\"\nmax_block_failures = 1")
		cfg = strings.Replace(cfg, "exclusive = false", "exclusive = true", 1)
		d := startSlurmDaemon(t, cfg)
		d.Submit("--", "true")
		slurmWait(t, d, "the block to fail", 2*time.Minute, func(s slurmStatus) bool {
			return len(s.Blocks) > 0 && s.Blocks[0].State == "failed"
		})
		stderr, err := os.ReadFile(filepath.Join(d.RunDir, "blocks", "1", "stderr"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"2 ranks for 1 workers", "1 of the node's", "--cpu-bind=none", "launcher bound it"} {
			if !strings.Contains(string(stderr), want) {
				t.Errorf("block stderr lacks %q:\n%s", want, testenv.Tail(string(stderr), 20))
			}
		}
	})
}
