package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
	"github.com/htex/htex/journal"
)

const chaosConfig = `
[executor]
max_workers_per_node = 4
cores_per_worker = 0.01
heartbeat_period = 1
heartbeat_threshold = 4
[provider]
kind = "local"
init_blocks = 2
max_blocks = 2
[strategy]
period = 1
`

// run is one attempt of a task as the task itself logged it.
type run struct {
	start, end int64 // µs since the epoch; end 0 = never logged its end
	pid        int
}

// readRuns parses lines "TASK s|e MICROS PID" into runs per task.
func readRuns(t *testing.T, path string) map[int][]*run {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	runs := map[int][]*run{}
	byPid := map[int]*run{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var id, pid int
		var kind string
		var at int64
		if n, _ := fmt.Sscanf(sc.Text(), "%d %s %d %d", &id, &kind, &at, &pid); n != 4 {
			t.Fatalf("bad log line %q", sc.Text())
		}
		switch kind {
		case "s":
			r := &run{start: at, pid: pid}
			runs[id] = append(runs[id], r)
			byPid[pid] = r
		case "e":
			if r := byPid[pid]; r != nil {
				r.end = at
			}
		}
	}
	return runs
}

// TestChaos: while 3000 tasks run and log each attempt, the daemon is
// killed with SIGKILL and restarted, pools are killed with SIGKILL and
// stopped with SIGSTOP (for less and for more than the heartbeat
// threshold). At the end
// every task has succeeded, none is lost, no task ran twice at the same
// time, the journal passes PRAGMA integrity_check, and no task process is
// left after stop.
func TestChaos(t *testing.T) {
	testenv.Integration(t)
	const n = 3000
	d := testenv.StartDaemon(t, chaosConfig)
	logPath := filepath.Join(t.TempDir(), "runs.log")
	script := `echo "$HTEX_TASK_ID s ${EPOCHREALTIME/./} $$" >> ` + logPath +
		`; if [ $((HTEX_ARRAY_INDEX % 4)) = 0 ]; then sleep 0.4; fi; echo "$HTEX_TASK_ID e ${EPOCHREALTIME/./} $$" >> ` + logPath
	job := d.Submit("--array", "1-"+strconv.Itoa(n), "--retries", "20", "--", "bash", "-c", script)

	var poolKills []int64 // µs: when an attempt may have been ended by a pool kill or a long pool stop
	kills, stops, restarts := 0, 0, 0
	chaosEnd := time.Now().Add(60 * time.Second)
	for i := 0; time.Now().Before(chaosEnd); i++ {
		time.Sleep(2 * time.Second)
		if st := d.Status(); st.Succeeded+st.Failed >= n {
			break
		}
		pools := secProcesses(t, "worker", d.RunDir)
		switch {
		case i%3 == 0 && len(pools) > 0:
			syscall.Kill(pools[0], syscall.SIGKILL)
			poolKills = append(poolKills, time.Now().UnixMicro())
			kills++
		case i%3 == 1 && len(pools) > 0:
			// Alternately shorter and longer than the heartbeat threshold
			// (4 s): a long stop makes the interchange retry the pool's
			// tasks, and its supervisor kill them (worker/supervise.go).
			p := pools[len(pools)-1]
			hold := 1500 * time.Millisecond
			if stops%2 == 1 {
				hold = 5 * time.Second
				// Frozen within one poll of the supervisor: by 1 s at most.
				poolKills = append(poolKills, time.Now().Add(time.Second).UnixMicro())
			}
			syscall.Kill(p, syscall.SIGSTOP)
			time.Sleep(hold)
			syscall.Kill(p, syscall.SIGCONT)
			stops++
		case i%3 == 2:
			d.Kill9()
			d.Start()
			restarts++
		}
	}
	if rc := d.WaitJob(job); rc != 0 {
		t.Errorf("wait: exit %d", rc)
	}
	results := d.Results(job)
	d.Stop()

	ok, failed := 0, 0
	for _, r := range results {
		if r.State == "succeeded" {
			ok++
		} else {
			failed++
		}
	}
	runs := readRuns(t, logPath)
	lost, overlaps, unexplained, attempts := 0, 0, 0, 0
	for id := range runs {
		rs := runs[id]
		attempts += len(rs)
		sort.Slice(rs, func(a, b int) bool { return rs[a].start < rs[b].start })
		done := false
		for k, r := range rs {
			end := r.end
			if end == 0 { // killed with its pool: it ended at the next pool kill or long stop
				for _, at := range poolKills {
					if at >= r.start {
						end = at
						break
					}
				}
				if end == 0 {
					unexplained++
					continue
				}
			} else {
				done = true
			}
			if k+1 < len(rs) && rs[k+1].start < end {
				overlaps++
				t.Errorf("task %d: attempt pid %d started at %d while pid %d ran (%d..%d)", id, rs[k+1].pid, rs[k+1].start, r.pid, r.start, end)
			}
		}
		if !done {
			lost++
		}
	}
	lost += n - len(runs)
	jr, err := journal.Open(filepath.Join(d.RunDir, "htex.db"))
	if err != nil {
		t.Fatal(err)
	}
	integrity := jr.IntegrityCheck()
	jr.Close()
	var left []int
	for _, rs := range runs {
		for _, r := range rs {
			if !bbProcGone(r.pid) {
				left = append(left, r.pid)
			}
		}
	}
	t.Logf("chaos: %d tasks, %d attempts, %d pool kills, %d pool stops, %d daemon restarts; succeeded %d, failed %d, lost %d, overlapping runs %d, unexplained unfinished attempts %d, processes left %d, integrity %v",
		n, attempts, kills, stops, restarts, ok, failed, lost, overlaps, unexplained, len(left), integrity)
	if ok != n || lost != 0 || overlaps != 0 || unexplained != 0 || len(left) != 0 || integrity != nil {
		t.Errorf("chaos invariants broken (see the line above)\n%s", testenv.Tail(d.Log(), 3000))
	}
	for _, pid := range left {
		syscall.Kill(pid, syscall.SIGKILL)
	}

}
