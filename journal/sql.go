package journal

// All SQL of the journal lives in this file: the schema, the insert and
// upsert statements (built here from the column lists for any row count)
// and the queries behind the read methods. docs/journal.md describes the
// schema for people who query htex.db with the sqlite3 CLI; keep both in step.

import (
	"strconv"
	"strings"
)

// SchemaVersion is the version of the schema this package writes. Open
// refuses a journal whose meta.schema_version is newer, and migrates an
// older one (migrations).
const SchemaVersion = 2

// Pragmas. Every connection gets busy_timeout and foreign_keys=off; the
// writer also sets WAL (persistent in the file) and synchronous=NORMAL:
// a commit is in the WAL file (in the OS page cache) before Commit returns,
// so it survives kill -9 of the process; fsync happens at checkpoints, so a
// power loss or kernel crash may lose the last transactions but never
// corrupts the database.
const busyTimeoutMS = 10000

var (
	// Both: _mutex=no opens connections without SQLite's own per-call
	// mutex: database/sql hands a connection to one goroutine at a time,
	// and the writer's driver connection is used only under Journal.mu.
	//
	// dsnWriter: BEGIN IMMEDIATE for every transaction (one writer, no
	// lock upgrade deadlocks), 16 MiB page cache: the writer appends at
	// the right edges of its B-trees, so a larger cache only holds pages
	// it will not touch again (a bulk submit filled 64 MiB with them: 45
	// MB of the daemon's peak for 1,000,000 tasks) and BenchmarkWrite*
	// measured no difference between 16 and 64 MiB.
	dsnWriter = "_mutex=no&_journal_mode=WAL&_synchronous=NORMAL&_foreign_keys=off&_txlock=immediate&_cache_size=-16384&_busy_timeout=" + strconv.Itoa(busyTimeoutMS)
	// dsnReader: query_only so that no read path can ever write.
	dsnReader = "_mutex=no&_synchronous=NORMAL&_foreign_keys=off&_query_only=1&_busy_timeout=" + strconv.Itoa(busyTimeoutMS)
)

// pragmasWriter run once on the writer connection after open.
var pragmasWriter = []string{
	// Checkpoint every ~64 MiB of WAL instead of 4 MiB: fewer, larger
	// checkpoints at a high task rate, each copying the B-trees' hot pages
	// (their right edges) once for more commits (BenchmarkWriteMixed: 10 %
	// faster than at 16 MiB).
	"PRAGMA wal_autocheckpoint = 16000",
	// Truncate the WAL file back to 64 MiB after a checkpoint resets it.
	"PRAGMA journal_size_limit = 67108864",
	"PRAGMA temp_store = MEMORY",
}

const sqlMetaTableExists = `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'`

// schema creates version 1; a new journal is made by it and then every
// migration, in the same transaction as the insert of meta.schema_version,
// so a journal is either fully created or not at all, and a new journal
// has exactly the tables that a migrated one has.
var schema = []string{
	`CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
)`,
	`CREATE TABLE jobs (
	id           INTEGER PRIMARY KEY,
	name         TEXT NOT NULL DEFAULT '',
	submitted_at REAL
)`,
	`CREATE TABLE tasks (
	id           INTEGER PRIMARY KEY,
	job_id       INTEGER NOT NULL,
	array_index  INTEGER NOT NULL DEFAULT -1,
	argv         TEXT NOT NULL DEFAULT '[]',
	env          TEXT NOT NULL DEFAULT '[]',
	cwd          TEXT NOT NULL DEFAULT '',
	timeout_s    REAL NOT NULL DEFAULT 0,
	retries      INTEGER NOT NULL DEFAULT 0,
	priority     INTEGER NOT NULL DEFAULT 0,
	noop         INTEGER NOT NULL DEFAULT 0,
	stdout_path  TEXT NOT NULL DEFAULT '',
	stderr_path  TEXT NOT NULL DEFAULT '',
	submitted_at REAL
)`,
	`CREATE INDEX tasks_job ON tasks(job_id, id)`,
	`CREATE TABLE results (
	task_id    INTEGER PRIMARY KEY,
	state      TEXT NOT NULL,
	exit_code  INTEGER NOT NULL DEFAULT 0,
	signal     INTEGER NOT NULL DEFAULT 0,
	error_kind TEXT NOT NULL DEFAULT '',
	error      TEXT NOT NULL DEFAULT '',
	attempts   INTEGER NOT NULL DEFAULT 0,
	block_id   INTEGER NOT NULL DEFAULT 0,
	pool_id    TEXT NOT NULL DEFAULT '',
	node       TEXT NOT NULL DEFAULT '',
	rank       INTEGER NOT NULL DEFAULT 0,
	started_at REAL,
	ended_at   REAL,
	stdout     BLOB,
	stderr     BLOB
)`,
	`CREATE TABLE attempts (
	task_id    INTEGER NOT NULL,
	attempt    INTEGER NOT NULL,
	pool_id    TEXT NOT NULL DEFAULT '',
	block_id   INTEGER NOT NULL DEFAULT 0,
	node       TEXT NOT NULL DEFAULT '',
	state      TEXT NOT NULL DEFAULT '',
	error_kind TEXT NOT NULL DEFAULT '',
	exit_code  INTEGER NOT NULL DEFAULT 0,
	started_at REAL,
	ended_at   REAL
)`,
	`CREATE INDEX attempts_task ON attempts(task_id, attempt)`,
	`CREATE TABLE blocks (
	id           INTEGER PRIMARY KEY,
	job_id       TEXT NOT NULL DEFAULT '',
	provider     TEXT NOT NULL DEFAULT '',
	state        TEXT NOT NULL DEFAULT '',
	nodes        INTEGER NOT NULL DEFAULT 0,
	submitted_at REAL,
	updated_at   REAL,
	ended_at     REAL,
	message      TEXT NOT NULL DEFAULT '',
	stderr_path  TEXT NOT NULL DEFAULT '',
	script_path  TEXT NOT NULL DEFAULT ''
)`,
	`CREATE TABLE pools (
	id            TEXT PRIMARY KEY,
	block_id      INTEGER NOT NULL DEFAULT 0,
	node          TEXT NOT NULL DEFAULT '',
	hostname      TEXT NOT NULL DEFAULT '',
	cpus          INTEGER NOT NULL DEFAULT 0,
	memory_gb     REAL NOT NULL DEFAULT 0,
	slots         INTEGER NOT NULL DEFAULT 0,
	registered_at REAL,
	lost_at       REAL
)`,
	`CREATE INDEX pools_block ON pools(block_id)`,
	`CREATE TABLE events (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	at       REAL NOT NULL,
	kind     TEXT NOT NULL,
	block_id INTEGER NOT NULL DEFAULT 0,
	pool_id  TEXT NOT NULL DEFAULT '',
	task_id  INTEGER NOT NULL DEFAULT 0,
	message  TEXT NOT NULL DEFAULT ''
)`,
	`CREATE VIEW task_status AS
SELECT t.id                                    AS task_id,
       t.job_id                                AS job_id,
       t.array_index                           AS array_index,
       t.argv                                  AS argv,
       coalesce(r.state, 'pending')            AS state,
       r.exit_code                             AS exit_code,
       r.signal                                AS signal,
       r.error_kind                            AS error_kind,
       coalesce(r.attempts,
                (SELECT count(*) FROM attempts a WHERE a.task_id = t.id))
                                               AS attempts,
       r.block_id                              AS block_id,
       r.node                                  AS node,
       r.rank                                  AS rank,
       t.submitted_at                          AS submitted_at,
       r.started_at                            AS started_at,
       r.ended_at                              AS ended_at,
       r.ended_at - r.started_at               AS seconds
FROM tasks t LEFT JOIN results r ON r.task_id = t.id`,
}

// migrations[v] brings a journal of version v to version v+1. They only
// add: columns with defaults that say what an older htex meant, so that a
// run directory of an older htex resumes (its tasks are tasks of no size).
var migrations = map[int][]string{
	// Version 2: tasks of a size (submit --cores/--gpus/--mem) and
	// multi-node tasks (--nodes/--ranks-per-node), and what each attempt
	// got: its CPUs and accelerators as lists ("0-3", "0,1"), its nodes
	// as a comma list.
	1: {
		`ALTER TABLE tasks ADD COLUMN cores INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE tasks ADD COLUMN gpus INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE tasks ADD COLUMN mem_bytes INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE tasks ADD COLUMN nodes INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE tasks ADD COLUMN ranks_per_node INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE results ADD COLUMN cpus TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE results ADD COLUMN gpus TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE results ADD COLUMN nodes TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE attempts ADD COLUMN cpus TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE attempts ADD COLUMN gpus TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE attempts ADD COLUMN nodes TEXT NOT NULL DEFAULT ''`,
	},
}

// sqlSetVersion records the schema version after a migration.
const sqlSetVersion = `UPDATE meta SET value = ? WHERE key = 'schema_version'`

// sqlInitMeta records the schema version of a new journal.
const sqlInitMeta = `INSERT INTO meta(key, value) VALUES ('schema_version', ?), ('created_at', ?)`

const (
	sqlGetMeta = `SELECT value FROM meta WHERE key = ?`
	sqlSetMeta = `INSERT INTO meta(key, value) VALUES (?, ?)
ON CONFLICT(key) DO UPDATE SET value = excluded.value`
	sqlIntegrityCheck = `PRAGMA integrity_check`
	sqlOptimize       = `PRAGMA optimize`
)

// insertSpec describes one multi-row INSERT: the statement for n rows is
// head + n × "(?,…,?)" + tail. The column order here is the order in which
// journal.go appends the arguments of a row.
type insertSpec struct {
	table string
	cols  int
	head  string
	tail  string
}

func newInsert(table string, columns []string, tail string) *insertSpec {
	return &insertSpec{
		table: table,
		cols:  len(columns),
		head:  "INSERT INTO " + table + "(" + strings.Join(columns, ", ") + ") VALUES ",
		tail:  tail,
	}
}

// sql returns the statement text for n rows.
func (s *insertSpec) sql(n int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", s.cols), ",") + ")"
	var b strings.Builder
	b.Grow(len(s.head) + n*(len(one)+1) + len(s.tail))
	b.WriteString(s.head)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(one)
	}
	b.WriteString(s.tail)
	return b.String()
}

// upsertTail builds "ON CONFLICT(key) DO UPDATE SET c = excluded.c, …";
// the columns in keep (times) are only replaced by a non-NULL value, so a
// zero time in an update never erases a time already recorded.
func upsertTail(key string, columns []string, keep ...string) string {
	var sets []string
	for _, c := range columns {
		if c == key {
			continue
		}
		if contains(keep, c) {
			sets = append(sets, c+" = coalesce(excluded."+c+", "+c+")")
		} else {
			sets = append(sets, c+" = excluded."+c)
		}
	}
	return " ON CONFLICT(" + key + ") DO UPDATE SET " + strings.Join(sets, ", ")
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// sizeCols and gotCols are the columns of version 2 at the end of
// colsTasks and of colsResults and colsAttempt.
const sizeCols, gotCols = 5, 3

var (
	colsJobs  = []string{"id", "name", "submitted_at"}
	colsTasks = []string{"id", "job_id", "array_index", "argv", "env", "cwd", "timeout_s", "retries", "priority", "noop", "stdout_path", "stderr_path", "submitted_at",
		"cores", "gpus", "mem_bytes", "nodes", "ranks_per_node"}
	colsResults = []string{"task_id", "state", "exit_code", "signal", "error_kind", "error", "attempts", "block_id", "pool_id", "node", "rank", "started_at", "ended_at", "stdout", "stderr", "cpus", "gpus", "nodes"}
	colsAttempt = []string{"task_id", "attempt", "pool_id", "block_id", "node", "state", "error_kind", "exit_code", "started_at", "ended_at", "cpus", "gpus", "nodes"}
	colsBlocks  = []string{"id", "job_id", "provider", "state", "nodes", "submitted_at", "updated_at", "ended_at", "message", "stderr_path", "script_path"}
	colsPools   = []string{"id", "block_id", "node", "hostname", "cpus", "memory_gb", "slots", "registered_at", "lost_at"}
	colsEvents  = []string{"at", "kind", "block_id", "pool_id", "task_id", "message"}

	insJobs = newInsert("jobs", colsJobs, "")
	// Rows of tasks without a size, and results and attempts that got
	// nothing to say (no pinned CPUs, no GPUs, one node), are written
	// without the columns of version 2, which then take their defaults:
	// each column costs a bind per row, and these are nearly all rows.
	insTasks       = newInsert("tasks", colsTasks[:len(colsTasks)-sizeCols], "")
	insTasksSized  = newInsert("tasks", colsTasks, "")
	insResults     = newInsert("results", colsResults[:len(colsResults)-gotCols], "")
	insResultsGot  = newInsert("results", colsResults, "")
	insAttempts    = newInsert("attempts", colsAttempt[:len(colsAttempt)-gotCols], "")
	insAttemptsGot = newInsert("attempts", colsAttempt, "")
	insBlocks      = newInsert("blocks", colsBlocks, upsertTail("id", colsBlocks, "submitted_at", "updated_at", "ended_at"))
	insPools       = newInsert("pools", colsPools, upsertTail("id", colsPools, "registered_at", "lost_at"))
	insEvents      = newInsert("events", colsEvents, "")
)

// Read queries. Column lists are shared with the scan functions in journal.go.
var (
	selTask   = "t." + strings.Join(colsTasks, ", t.")
	selResult = "r." + strings.Join(colsResults, ", r.")

	sqlUnfinished = `SELECT ` + selTask + ` FROM tasks t
WHERE NOT EXISTS (SELECT 1 FROM results r WHERE r.task_id = t.id) ORDER BY t.id`
	sqlUnfinishedAttempts = `SELECT a.task_id, count(*) FROM attempts a
WHERE NOT EXISTS (SELECT 1 FROM results r WHERE r.task_id = a.task_id) GROUP BY a.task_id`

	sqlMaxIDs = `SELECT (SELECT coalesce(max(id), 0) FROM jobs),
       (SELECT coalesce(max(id), 0) FROM tasks),
       (SELECT coalesce(max(id), 0) FROM blocks)`

	sqlBlocks       = `SELECT ` + strings.Join(colsBlocks, ", ") + ` FROM blocks ORDER BY id`
	sqlActiveBlocks = `SELECT ` + strings.Join(colsBlocks, ", ") + ` FROM blocks WHERE ended_at IS NULL ORDER BY id`
	sqlPools        = `SELECT ` + strings.Join(colsPools, ", ") + ` FROM pools ORDER BY registered_at, id`
	sqlActivePools  = `SELECT ` + strings.Join(colsPools, ", ") + ` FROM pools WHERE lost_at IS NULL ORDER BY registered_at, id`

	sqlRowsAll = `SELECT ` + selTask + `, ` + selResult + ` FROM tasks t LEFT JOIN results r ON r.task_id = t.id
WHERE t.id > ? ORDER BY t.id LIMIT ?`
	sqlTasksAfter = `SELECT ` + selTask + ` FROM tasks t WHERE t.id > ? ORDER BY t.id LIMIT ?`
	sqlRowsJob    = `SELECT ` + selTask + `, ` + selResult + ` FROM tasks t LEFT JOIN results r ON r.task_id = t.id
WHERE t.job_id = ? AND t.id > ? ORDER BY t.id LIMIT ?`

	sqlJobCounts = `SELECT j.id, j.name, count(t.id),
       coalesce(sum(r.state = 'succeeded'), 0),
       coalesce(sum(r.state = 'failed'), 0),
       coalesce(sum(r.state = 'cancelled'), 0)
FROM jobs j
LEFT JOIN tasks t ON t.job_id = j.id
LEFT JOIN results r ON r.task_id = t.id
GROUP BY j.id ORDER BY j.id`

	sqlJobs     = `SELECT ` + strings.Join(colsJobs, ", ") + ` FROM jobs ORDER BY id`
	sqlAttempts = `SELECT ` + strings.Join(colsAttempt, ", ") + ` FROM attempts WHERE task_id = ? ORDER BY attempt, rowid`
	sqlEvents   = `SELECT id, ` + strings.Join(colsEvents, ", ") + ` FROM events WHERE id > ? ORDER BY id LIMIT ?`
)
