package journal

import (
	"database/sql"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// v1Journal makes a journal as htex with schema version 1 wrote it: the
// version 1 schema, its meta rows, and rows with the columns of version 1
// only (a finished task, a queued one with a lost attempt).
func v1Journal(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "htex.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := append(append([]string{}, schema...),
		`INSERT INTO meta(key, value) VALUES ('schema_version', '1'), ('created_at', '2026-01-01T00:00:00Z')`,
		`INSERT INTO jobs(id, name, submitted_at) VALUES (1, 'old', 1700000000)`,
		`INSERT INTO tasks(id, job_id, array_index, argv, env, cwd, timeout_s, retries, priority, noop, stdout_path, stderr_path, submitted_at)
		 VALUES (1, 1, -1, '["true"]', '[]', '/tmp', 0, 2, 0, 0, '', '', 1700000000),
		        (2, 1, -1, '["sleep","9"]', '["A=1"]', '/tmp', 30, 2, 5, 0, '', '', 1700000001)`,
		`INSERT INTO results(task_id, state, attempts, block_id, pool_id, node, rank, started_at, ended_at)
		 VALUES (1, 'succeeded', 1, 3, 'p', 'n1', 0, 1700000002, 1700000003)`,
		`INSERT INTO attempts(task_id, attempt, pool_id, block_id, node, state, error_kind, exit_code, started_at, ended_at)
		 VALUES (2, 1, 'p', 3, 'n1', 'lost', 'manager_lost', 0, 1700000002, 1700000004)`,
	)
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return path
}

// columns lists the columns of every table of a journal, by table.
func columns(t *testing.T, path string) map[string][]string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string][]string{}
	for _, table := range []string{"meta", "jobs", "tasks", "results", "attempts", "blocks", "pools", "events"} {
		rows, err := db.Query(`SELECT name FROM pragma_table_info(?)`, table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var c string
			rows.Scan(&c)
			out[table] = append(out[table], c)
		}
		rows.Close()
	}
	return out
}

// TestOpenMigratesVersion1: a journal of schema version 1 (a run directory
// of an older htex) opens as version 2, its tasks as tasks of no size, and
// takes rows of version 2 from then on; it has the columns of a new one.
func TestOpenMigratesVersion1(t *testing.T) {
	path := v1Journal(t)
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := j.Meta("schema_version"); v != "2" {
		t.Fatalf("schema_version %q after open, want 2", v)
	}
	heads, att, err := j.UnfinishedHeads()
	if err != nil {
		t.Fatal(err)
	}
	want := []TaskHead{{ID: 2, JobID: 1, Timeout: 30 * time.Second, Retries: 2, Priority: 5, SubmittedAt: time.Unix(1700000001, 0)}}
	if !reflect.DeepEqual(heads, want) || att[2] != 1 {
		t.Fatalf("heads %+v attempts %v, want %+v and 1 attempt of task 2", heads, att, want)
	}
	rows, err := j.Rows(1, 0, 0)
	if err != nil || len(rows) != 2 || rows[0].Result == nil || rows[0].Result.Got != nil || rows[1].Task.Cores != 0 {
		t.Fatalf("rows %+v, %v", rows, err)
	}
	b := &Batch{
		Tasks: []Task{{ID: 3, JobID: 1, ArrayIndex: -1, Argv: []string{"omp"}, Cores: 8, GPUs: 2, MemBytes: 1 << 30, Nodes: 2, RanksPerNode: 4}},
		Results: []Result{{TaskID: 2, State: "succeeded", Attempts: 2, Got: &Got{CPUs: "0-7", GPUs: "0,1"}},
			{TaskID: 3, State: "succeeded", Attempts: 1, Got: &Got{CPUs: "0-3", Nodes: []string{"a", "b"}}}},
		Attempts: []Attempt{{TaskID: 3, Attempt: 1, State: "lost", Got: &Got{CPUs: "4-7", GPUs: "1", Nodes: []string{"a", "b"}}}},
	}
	mustWrite(t, j, b)
	rows, err = j.Rows(1, 1, 0)
	if err != nil || len(rows) != 2 {
		t.Fatalf("rows %+v, %v", rows, err)
	}
	if got := rows[1].Task; got.Cores != 8 || got.GPUs != 2 || got.MemBytes != 1<<30 || got.Nodes != 2 || got.RanksPerNode != 4 {
		t.Errorf("task 3 read back as %+v", got)
	}
	if g := rows[0].Result.Got; g == nil || g.CPUs != "0-7" || g.GPUs != "0,1" {
		t.Errorf("result of task 2 got %+v", g)
	}
	if g := rows[1].Result.Got; g == nil || !reflect.DeepEqual(g.Nodes, []string{"a", "b"}) {
		t.Errorf("result of task 3 got %+v", g)
	}
	a, err := j.Attempts(3)
	if err != nil || len(a) != 1 || !reflect.DeepEqual(a[0].Got, b.Attempts[0].Got) {
		t.Errorf("attempts of task 3: %+v, %v", a, err)
	}
	j.Close()
	// Opened again: nothing to migrate, the rows stay.
	j, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if rows, err := j.Rows(1, 0, 0); err != nil || len(rows) != 3 {
		t.Fatalf("after reopen: %d rows, %v", len(rows), err)
	}
	fresh, _ := open(t)
	if got, want := columns(t, path), columns(t, fresh.Path()); !reflect.DeepEqual(got, want) {
		t.Errorf("a migrated journal's columns differ from a new one's:\n got %v\nwant %v", got, want)
	}
}
