package journal

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

func open(t testing.TB) (*Journal, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "htex.db")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j, path
}

// ts returns a time with microsecond precision, as the journal keeps it.
func ts(sec int64, us int64) time.Time { return time.Unix(1_700_000_000+sec, us*1000) }

func mustWrite(t testing.TB, j *Journal, b *Batch) {
	t.Helper()
	if err := j.Write(b); err != nil {
		t.Fatal(err)
	}
}

func sampleBatch() *Batch {
	return &Batch{
		Jobs: []Job{{ID: 1, Name: "sim <&> \"quoted\"", SubmittedAt: ts(0, 1)}, {ID: 2, Name: "", SubmittedAt: ts(1, 999999)}},
		Tasks: []Task{
			{ID: 1, JobID: 1, ArrayIndex: -1, Argv: []string{"/bin/echo", "héllo wörld ✓", "a\"b\\c", "line1\nline2\t\x01", "<html>&"},
				Env: []string{"A=1", "B=x=y"}, Cwd: "/tmp/work dir", Timeout: 1500 * time.Millisecond, Retries: 2, Priority: -3,
				StdoutPath: "/out/%j.%t.out", StderrPath: "/out/%j.%t.err", SubmittedAt: ts(0, 2),
				Cores: 4, GPUs: 1, MemBytes: 4 << 30},
			{ID: 2, JobID: 2, ArrayIndex: 0, Argv: []string{"true"}, Noop: true, SubmittedAt: ts(1, 3)},
			{ID: 3, JobID: 2, ArrayIndex: 1, Argv: []string{"false"}, Timeout: 3 * time.Hour, SubmittedAt: ts(1, 4)},
			{ID: 4, JobID: 2, ArrayIndex: 2, Argv: []string{"sleep", "100"}, Nodes: 2, RanksPerNode: 4},
		},
		Results: []Result{
			{TaskID: 1, State: "succeeded", Attempts: 1, BlockID: 7, PoolID: "pool-a", Node: "nid0001", Rank: 3,
				StartedAt: ts(10, 0), EndedAt: ts(12, 500000), Stdout: []byte("héllo\x00\xff\n"), Stderr: []byte("warn\n"),
				Got: &Got{CPUs: "0-3", GPUs: "0"}},
			{TaskID: 3, State: "failed", ExitCode: 1, ErrorKind: "exit", Error: "exit status 1", Attempts: 3,
				BlockID: 7, PoolID: "pool-b", Node: "nid0002", StartedAt: ts(20, 0), EndedAt: ts(21, 0)},
		},
		Attempts: []Attempt{
			{TaskID: 3, Attempt: 1, PoolID: "pool-a", BlockID: 7, Node: "nid0001", State: "lost", ErrorKind: "manager_lost", StartedAt: ts(13, 0), EndedAt: ts(15, 0)},
			{TaskID: 3, Attempt: 2, PoolID: "pool-b", BlockID: 7, Node: "nid0002", State: "failed", ErrorKind: "exit", ExitCode: 1, StartedAt: ts(16, 0), EndedAt: ts(17, 0)},
			{TaskID: 3, Attempt: 3, PoolID: "pool-b", BlockID: 7, Node: "nid0002", State: "failed", ErrorKind: "exit", ExitCode: 1, StartedAt: ts(20, 0), EndedAt: ts(21, 0)},
			{TaskID: 4, Attempt: 1, PoolID: "pool-a", BlockID: 7, Node: "nid0001", State: "lost", ErrorKind: "manager_lost", StartedAt: ts(13, 0), EndedAt: ts(15, 0),
				Got: &Got{CPUs: "0-63", Nodes: []string{"nid0001", "nid0002"}}},
		},
		Blocks: []Block{
			{ID: 7, JobID: "123456", Provider: "slurm", State: "running", Nodes: 2, SubmittedAt: ts(5, 0), UpdatedAt: ts(6, 0),
				StderrPath: "/run/blocks/7/stderr", ScriptPath: "/run/blocks/7/script.sh"},
			{ID: 8, JobID: "123457.pbs01", Provider: "pbs", State: "failed", Nodes: 1, SubmittedAt: ts(5, 0), UpdatedAt: ts(30, 0),
				EndedAt: ts(30, 0), Message: "Exit_status=1"},
		},
		Pools: []Pool{
			{ID: "pool-a", BlockID: 7, Node: "nid0001", Hostname: "nid0001.cluster", CPUs: 64, MemoryGB: 251.5, Slots: 8,
				RegisteredAt: ts(8, 0), LostAt: ts(15, 0)},
			{ID: "pool-b", BlockID: 7, Node: "nid0002", Hostname: "nid0002.cluster", CPUs: 64, MemoryGB: 251.5, Slots: 8,
				RegisteredAt: ts(9, 0)},
		},
		Events: []Event{
			{At: ts(5, 0), Kind: "block_submitted", BlockID: 7, Message: "sbatch ok"},
			{At: ts(15, 0), Kind: "pool_lost", BlockID: 7, PoolID: "pool-a", Message: "no heartbeat for 120s"},
			{At: ts(15, 1), Kind: "task_retry", TaskID: 3, PoolID: "pool-a"},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	j, _ := open(t)
	b := sampleBatch()
	mustWrite(t, j, b)

	jobs, err := j.Jobs()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(jobs, b.Jobs) {
		t.Errorf("jobs:\n got %+v\nwant %+v", jobs, b.Jobs)
	}

	rows, err := j.Rows(0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(b.Tasks) {
		t.Fatalf("rows: got %d want %d", len(rows), len(b.Tasks))
	}
	results := map[int64]*Result{1: &b.Results[0], 3: &b.Results[1]}
	for i, r := range rows {
		if !reflect.DeepEqual(r.Task, b.Tasks[i]) {
			t.Errorf("task %d:\n got %#v\nwant %#v", i, r.Task, b.Tasks[i])
		}
		if !reflect.DeepEqual(r.Result, results[r.Task.ID]) {
			t.Errorf("result of task %d:\n got %#v\nwant %#v", r.Task.ID, r.Result, results[r.Task.ID])
		}
	}

	att, err := j.Attempts(3)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(att, b.Attempts[:3]) {
		t.Errorf("attempts:\n got %+v\nwant %+v", att, b.Attempts[:3])
	}
	blocks, err := j.Blocks(false)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(blocks, b.Blocks) {
		t.Errorf("blocks:\n got %+v\nwant %+v", blocks, b.Blocks)
	}
	active, err := j.Blocks(true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(active, b.Blocks[:1]) {
		t.Errorf("active blocks:\n got %+v\nwant %+v", active, b.Blocks[:1])
	}
	pools, err := j.Pools(false)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pools, b.Pools) {
		t.Errorf("pools:\n got %+v\nwant %+v", pools, b.Pools)
	}
	if p, _ := j.Pools(true); len(p) != 1 || p[0].ID != "pool-b" {
		t.Errorf("active pools: %+v", p)
	}
	events, err := j.Events(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != len(b.Events) {
		t.Fatalf("events: got %d", len(events))
	}
	for i, e := range events {
		if e.ID != int64(i+1) || !reflect.DeepEqual(e.Event, b.Events[i]) {
			t.Errorf("event %d:\n got %d %+v\nwant %+v", i, e.ID, e.Event, b.Events[i])
		}
	}
	if e, _ := j.Events(1, 1); len(e) != 1 || e[0].ID != 2 {
		t.Errorf("events(1,1): %+v", e)
	}

	counts, err := j.JobCounts()
	if err != nil {
		t.Fatal(err)
	}
	wantCounts := []JobCount{
		{JobID: 1, Name: b.Jobs[0].Name, Total: 1, Succeeded: 1},
		{JobID: 2, Name: "", Total: 3, Failed: 1},
	}
	if !reflect.DeepEqual(counts, wantCounts) {
		t.Errorf("job counts:\n got %+v\nwant %+v", counts, wantCounts)
	}
	job, task, block, err := j.MaxIDs()
	if err != nil || job != 2 || task != 4 || block != 8 {
		t.Errorf("MaxIDs = %d %d %d %v", job, task, block, err)
	}

	// Rows of one job, paged.
	page, err := j.Rows(2, 2, 1)
	if err != nil || len(page) != 1 || page[0].Task.ID != 3 || page[0].Result == nil || page[0].Result.State != "failed" {
		t.Errorf("Rows(2,2,1) = %+v, %v", page, err)
	}
	page, err = j.Rows(2, 3, 10)
	if err != nil || len(page) != 1 || page[0].Task.ID != 4 || page[0].Result != nil {
		t.Errorf("Rows(2,3,10) = %+v, %v", page, err)
	}

	// Tasks of every job after an id, without results, as Rows has them.
	after, err := j.TasksAfter(1, 2)
	if err != nil || len(after) != 2 || !reflect.DeepEqual(after[0], rows[1].Task) || !reflect.DeepEqual(after[1], rows[2].Task) {
		t.Errorf("TasksAfter(1,2) = %+v, %v; want the tasks of rows 2 and 3: %+v %+v", after, err, rows[1].Task, rows[2].Task)
	}
	if all, err := j.TasksAfter(0, 0); err != nil || len(all) != len(rows) {
		t.Errorf("TasksAfter(0,0): %d tasks, %v; want %d", len(all), err, len(rows))
	}
}

func TestUpsert(t *testing.T) {
	j, _ := open(t)
	mustWrite(t, j, &Batch{Blocks: []Block{{ID: 1, JobID: "42", Provider: "local", State: "pending", Nodes: 1, SubmittedAt: ts(0, 0), UpdatedAt: ts(0, 0)}}})
	// Two updates of the same block in one batch: the last wins; a zero
	// SubmittedAt does not erase the recorded one.
	mustWrite(t, j, &Batch{Blocks: []Block{
		{ID: 1, JobID: "42", Provider: "local", State: "running", Nodes: 1, UpdatedAt: ts(5, 0)},
		{ID: 1, JobID: "42", Provider: "local", State: "completed", Nodes: 1, UpdatedAt: ts(9, 0), EndedAt: ts(9, 0), Message: "done"},
	}})
	bl, err := j.Blocks(false)
	if err != nil {
		t.Fatal(err)
	}
	want := []Block{{ID: 1, JobID: "42", Provider: "local", State: "completed", Nodes: 1, SubmittedAt: ts(0, 0), UpdatedAt: ts(9, 0), EndedAt: ts(9, 0), Message: "done"}}
	if !reflect.DeepEqual(bl, want) {
		t.Errorf("block:\n got %+v\nwant %+v", bl, want)
	}
	if a, _ := j.Blocks(true); len(a) != 0 {
		t.Errorf("active blocks: %+v", a)
	}

	mustWrite(t, j, &Batch{Pools: []Pool{{ID: "p", BlockID: 1, Node: "n", CPUs: 4, Slots: 4, RegisteredAt: ts(1, 0)}}})
	mustWrite(t, j, &Batch{Pools: []Pool{{ID: "p", BlockID: 1, Node: "n", CPUs: 4, Slots: 4, LostAt: ts(3, 0)}}})
	p, err := j.Pools(false)
	if err != nil {
		t.Fatal(err)
	}
	wantP := []Pool{{ID: "p", BlockID: 1, Node: "n", CPUs: 4, Slots: 4, RegisteredAt: ts(1, 0), LostAt: ts(3, 0)}}
	if !reflect.DeepEqual(p, wantP) {
		t.Errorf("pool:\n got %+v\nwant %+v", p, wantP)
	}
}

func count(t testing.TB, j *Journal, table string) int {
	t.Helper()
	var n int
	if err := j.r.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWriteAtomic(t *testing.T) {
	j, _ := open(t)
	mustWrite(t, j, sampleBatch())
	before := map[string]int{}
	tables := []string{"jobs", "tasks", "results", "attempts", "blocks", "pools", "events"}
	for _, tb := range tables {
		before[tb] = count(t, j, tb)
	}

	// Everything new except one result whose task_id already has a result.
	var bad Batch
	bad.Jobs = []Job{{ID: 10, Name: "new"}}
	for i := int64(0); i < 300; i++ {
		bad.Tasks = append(bad.Tasks, Task{ID: 100 + i, JobID: 10, ArrayIndex: -1, Argv: []string{"x"}})
		bad.Results = append(bad.Results, Result{TaskID: 100 + i, State: "succeeded"})
	}
	bad.Results = append(bad.Results, Result{TaskID: 1, State: "failed"})
	bad.Attempts = []Attempt{{TaskID: 100, Attempt: 1}}
	bad.Blocks = []Block{{ID: 7, State: "completed", EndedAt: ts(99, 0)}, {ID: 20, State: "pending"}}
	bad.Pools = []Pool{{ID: "pool-z"}}
	bad.Events = []Event{{At: ts(99, 0), Kind: "x"}}
	if err := j.Write(&bad); err == nil {
		t.Fatal("write with a duplicate result: no error")
	} else if !strings.Contains(err.Error(), "results") {
		t.Errorf("error does not name the table: %v", err)
	}
	// A duplicate inside one batch fails too.
	dup := &Batch{Results: []Result{{TaskID: 4, State: "succeeded"}, {TaskID: 4, State: "failed"}}}
	if err := j.Write(dup); err == nil {
		t.Fatal("write with a duplicate result in the batch: no error")
	}
	for _, tb := range tables {
		if n := count(t, j, tb); n != before[tb] {
			t.Errorf("%s: %d rows after failed writes, want %d", tb, n, before[tb])
		}
	}
	bl, _ := j.Blocks(true)
	if len(bl) != 1 || bl[0].ID != 7 || bl[0].State != "running" {
		t.Errorf("block 7 changed by a failed write: %+v", bl)
	}
	// The journal is still usable.
	mustWrite(t, j, &Batch{Results: []Result{{TaskID: 4, State: "cancelled", ErrorKind: "cancelled"}}})
	if n := count(t, j, "results"); n != before["results"]+1 {
		t.Errorf("results after good write: %d", n)
	}
}

func TestUnfinished(t *testing.T) {
	j, _ := open(t)
	var b Batch
	for i := int64(1); i <= 10; i++ {
		b.Tasks = append(b.Tasks, Task{ID: i, JobID: 1, ArrayIndex: i - 1, Argv: []string{"t", fmt.Sprint(i)}, Retries: 1})
	}
	b.Attempts = []Attempt{{TaskID: 2, Attempt: 1, State: "lost"}, {TaskID: 5, Attempt: 1, State: "lost"}, {TaskID: 5, Attempt: 2, State: "lost"}}
	mustWrite(t, j, &b)
	mustWrite(t, j, &Batch{
		Results:  []Result{{TaskID: 1, State: "succeeded"}, {TaskID: 2, State: "succeeded", Attempts: 2}, {TaskID: 9, State: "failed"}},
		Attempts: []Attempt{{TaskID: 2, Attempt: 2, State: "succeeded"}, {TaskID: 7, Attempt: 1, State: "lost"}},
	})
	tasks, att, err := j.Unfinished()
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, tk := range tasks {
		ids = append(ids, tk.ID)
	}
	if want := []int64{3, 4, 5, 6, 7, 8, 10}; !reflect.DeepEqual(ids, want) {
		t.Errorf("unfinished ids %v, want %v", ids, want)
	}
	if !reflect.DeepEqual(tasks[0], b.Tasks[2]) {
		t.Errorf("task 3:\n got %+v\nwant %+v", tasks[0], b.Tasks[2])
	}
	if want := map[int64]int{5: 2, 7: 1}; !reflect.DeepEqual(att, want) {
		t.Errorf("attempts %v, want %v", att, want)
	}

	// task_status view.
	var state string
	var attempts int
	if err := j.r.QueryRow("SELECT state, attempts FROM task_status WHERE task_id = 5").Scan(&state, &attempts); err != nil {
		t.Fatal(err)
	}
	if state != "pending" || attempts != 2 {
		t.Errorf("task_status of 5: %s %d", state, attempts)
	}
}

func TestTaskStatusView(t *testing.T) {
	j, _ := open(t)
	mustWrite(t, j, sampleBatch())
	rows, err := j.r.Query("SELECT task_id, state, exit_code, error_kind, attempts, node, seconds, datetime(ended_at, 'unixepoch') FROM task_status ORDER BY task_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id, attempts int64
		var state string
		var exit sql.NullInt64
		var kind, node, ended sql.NullString
		var secs sql.NullFloat64
		if err := rows.Scan(&id, &state, &exit, &kind, &attempts, &node, &secs, &ended); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d %s %v %q %d %q %.1f %s", id, state, exit.Int64, kind.String, attempts, node.String, secs.Float64, ended.String))
	}
	want := []string{
		`1 succeeded 0 "" 1 "nid0001" 2.5 2023-11-14 22:13:32`,
		`2 pending 0 "" 0 "" 0.0 `,
		`3 failed 1 "exit" 3 "nid0002" 1.0 2023-11-14 22:13:41`,
		`4 pending 0 "" 1 "" 0.0 `,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("task_status:\n got %q\nwant %q", got, want)
	}
}

func TestReopen(t *testing.T) {
	j, path := open(t)
	b := sampleBatch()
	mustWrite(t, j, b)
	if err := j.SetMeta("label", "polaris"); err != nil {
		t.Fatal(err)
	}
	if err := j.SetMeta("label", "aurora"); err != nil {
		t.Fatal(err)
	}
	if err := j.SetMeta("schema_version", "2"); err == nil {
		t.Error("SetMeta(schema_version) accepted")
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Write(b); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if _, _, _, err := j.MaxIDs(); !errors.Is(err, ErrClosed) {
		t.Errorf("MaxIDs after Close: %v", err)
	}

	j2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	rows, err := j2.Rows(0, 0, 0)
	if err != nil || len(rows) != len(b.Tasks) {
		t.Fatalf("rows after reopen: %d %v", len(rows), err)
	}
	for i, r := range rows {
		if !reflect.DeepEqual(r.Task, b.Tasks[i]) {
			t.Errorf("task %d after reopen:\n got %+v\nwant %+v", i, r.Task, b.Tasks[i])
		}
	}
	if v, err := j2.Meta("label"); v != "aurora" || err != nil {
		t.Errorf("meta label = %q %v", v, err)
	}
	if v, err := j2.Meta("schema_version"); v != fmt.Sprint(SchemaVersion) || err != nil {
		t.Errorf("meta schema_version = %q %v", v, err)
	}
	if v, err := j2.Meta("nope"); v != "" || err != nil {
		t.Errorf("meta nope = %q %v", v, err)
	}
	for _, tb := range []string{"jobs", "results", "attempts", "blocks", "pools", "events"} {
		if count(t, j2, tb) == 0 {
			t.Errorf("%s empty after reopen", tb)
		}
	}
	if err := j2.IntegrityCheck(); err != nil {
		t.Error(err)
	}
	// New events continue the id sequence.
	mustWrite(t, j2, &Batch{Events: []Event{{Kind: "restart"}}})
	ev, _ := j2.Events(3, 0)
	if len(ev) != 1 || ev[0].ID != 4 || ev[0].Event.At.IsZero() {
		t.Errorf("event after reopen: %+v", ev)
	}
}

func TestRefuseNewerSchema(t *testing.T) {
	j, path := open(t)
	j.Close()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE meta SET value = '99' WHERE key = 'schema_version'"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(path)
	if err == nil || !strings.Contains(err.Error(), "schema version 99 is newer") {
		t.Errorf("Open of a newer schema: %v", err)
	}
}

func TestRefuseForeignFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "other.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE x(a)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "not an htex journal") {
		t.Errorf("Open of a foreign database: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "missing", "htex.db")); err == nil {
		t.Error("Open in a missing directory: no error")
	}
}

func TestOddPathAndLargeBatch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run dir?#%x")
	j, err := Open(filepath.Join(dir+"", "..", filepath.Base(dir)+".db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	// Sizes that exercise full chunks and every power-of-two remainder.
	next := int64(1)
	for _, n := range []int{1, 127, 128, 129, 255, 1000, 1001} {
		b := benchBatch(next, n, true)
		mustWrite(t, j, b)
		next += int64(n)
	}
	total := int(next - 1)
	if c := count(t, j, "tasks"); c != total {
		t.Errorf("tasks %d, want %d", c, total)
	}
	if c := count(t, j, "results"); c != total {
		t.Errorf("results %d, want %d", c, total)
	}
	rows, err := j.Rows(0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if r.Task.ID != int64(i+1) || r.Result == nil || r.Result.TaskID != r.Task.ID || string(r.Result.Stdout) != fmt.Sprintf("hello %d\n", r.Task.ID) {
			t.Fatalf("row %d: %+v %+v", i, r.Task, r.Result)
		}
	}
}

func TestConcurrentReads(t *testing.T) {
	j, _ := open(t)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				// Every batch is 50 tasks and their results: a reader never
				// sees a partial one.
				cs, err := j.JobCounts()
				if err != nil {
					t.Error(err)
					return
				}
				for _, c := range cs {
					if c.Total != 50 || c.Succeeded != 50 {
						t.Errorf("partial batch visible: %+v", c)
						return
					}
				}
				if _, _, err := j.Unfinished(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	next := int64(1)
	for k := int64(1); k <= 40; k++ {
		b := benchBatch(next, 50, true)
		b.Jobs = []Job{{ID: k, Name: "j"}}
		for i := range b.Tasks {
			b.Tasks[i].JobID = k
		}
		mustWrite(t, j, b)
		next += 50
	}
	close(done)
	wg.Wait()
}

func TestEmptyBatch(t *testing.T) {
	j, _ := open(t)
	var b *Batch
	if !b.Empty() || !(&Batch{}).Empty() || (&Batch{Events: []Event{{}}}).Empty() {
		t.Error("Empty")
	}
	if err := j.Write(nil); err != nil {
		t.Error(err)
	}
	if err := j.Write(&Batch{}); err != nil {
		t.Error(err)
	}
	full := sampleBatch()
	full.Reset()
	if !full.Empty() || cap(full.Tasks) == 0 {
		t.Error("Reset")
	}
}

func FuzzJSONStrings(f *testing.F) {
	f.Add("plain", "")
	f.Add("quote\"back\\slash", "<&>\u2028")
	f.Add("ctl\x00\x01\x1f\x7f", "bad\xff\xfeutf8")
	f.Add("héllo ✓ 😀", "\n\r\t\b\f")
	f.Fuzz(func(t *testing.T, a, b string) {
		in := []string{a, b}
		enc := appendJSONStrings(nil, in)
		var out []string
		if err := json.Unmarshal(enc, &out); err != nil {
			t.Fatalf("%q -> %s: %v", in, enc, err)
		}
		// encoding/json is the reference for valid UTF-8 (any tool reads
		// the same strings); parseStrings gives back any bytes exactly.
		if utf8.ValidString(a) && utf8.ValidString(b) && !reflect.DeepEqual(out, in) {
			t.Fatalf("%q: encoding/json reads %q", in, out)
		}
		if got, err := parseStrings(enc); err != nil || !slices.Equal(got, in) {
			t.Fatalf("%q -> %s: parseStrings gives %q, %v", in, enc, got, err)
		}
	})
}

// The journal remembers the JSON of the last argv and env it wrote; a
// caller that reuses a slice with new contents must still get them written.
func TestWriteReusedArgvSlice(t *testing.T) {
	j, _ := open(t)
	argv := []string{"echo", "first"}
	env := []string{"A=1"}
	mustWrite(t, j, &Batch{Tasks: []Task{{ID: 1, JobID: 1, Argv: argv, Env: env}, {ID: 2, JobID: 1, Argv: argv, Env: env}}})
	argv[1], env[0] = "second", "A=2"
	mustWrite(t, j, &Batch{Tasks: []Task{{ID: 3, JobID: 1, Argv: argv, Env: env}}})
	got, _, err := j.Unfinished()
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]string{1: "echo first A=1", 2: "echo first A=1", 3: "echo second A=2"}
	for _, task := range got {
		if s := strings.Join(append(slices.Clone(task.Argv), task.Env...), " "); s != want[task.ID] {
			t.Errorf("task %d: argv+env %q, want %q", task.ID, s, want[task.ID])
		}
	}
	if len(got) != 3 {
		t.Errorf("%d tasks read back, want 3", len(got))
	}
}
