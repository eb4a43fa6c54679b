// Package journal is htex's durable record: jobs, tasks, results, attempts,
// blocks, pools and events in one SQLite database (<run-dir>/htex.db).
//
// One goroutine (the interchange's writer) calls Write with large batches;
// each Write is one transaction, all or nothing. Reads run concurrently on a
// separate pool of read-only connections and see the last committed batch
// (WAL mode). A Write that has returned nil survives kill -9 of the process
// (synchronous=NORMAL); a power loss may lose the last moments. The schema
// is documented in docs/journal.md; all SQL is in sql.go.
package journal

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// ErrClosed is returned by the methods of a closed Journal.
var ErrClosed = errors.New("journal: closed")

// maxRowsPerInsert bounds the rows of one multi-row INSERT. A chunk is
// written with statements for power-of-two row counts (maxRowsPerInsert,
// …, 2, 1): log2(maxRowsPerInsert)+1 statements per table, prepared once
// at Open.
const maxRowsPerInsert = 128

// readConns is the size of the read-only connection pool.
const readConns = 4

// Journal is an open htex.db. Its methods are safe for concurrent use;
// Writes are serialised.
type Journal struct {
	path string
	w    *sql.DB // one connection, all writes
	r    *sql.DB // read-only pool

	mu      sync.Mutex // serialises Write and SetMeta; guards what follows
	closed  bool
	discard bool // see DiscardWrites
	// The insert statements, prepared on the writer's driver connection
	// (stmtConn) by the first Write on it; Write runs them on that
	// connection directly, without database/sql's per-argument checks.
	stmts                        map[stmtKey]driver.Stmt
	stmtConn                     *sqlite3.SQLiteConn
	args                         []any
	named                        []driver.NamedValue
	buf                          []byte
	lastArgv                     argvJSON // the previous task's argv and env, encoded
	state, errorKind, pool, node boxCache
}

// argvJSON remembers the JSON of the last argv and env written (copies of
// them), boxed for the driver: consecutive tasks of a job often share them.
type argvJSON struct {
	argv, env         []string
	argvJSON, envJSON any
}

// boxCache boxes a string for the driver, reusing the box of the last
// string when it is the same: a batch's rows repeat their pool, node and
// state, and each box is an allocation the garbage collector would scan
// for, next to a heap that holds every queued task.
type boxCache struct {
	s string
	v any
}

func (b *boxCache) box(s string) any {
	if s == "" {
		return "" // boxing "" does not allocate
	}
	if b.v == nil || b.s != s {
		b.s, b.v = s, s
	}
	return b.v
}

// boxInt64 boxes n; Go boxes 0..255 without allocating, and -1 (no array
// index) is common enough to keep one box for.
func boxInt64(n int64) any {
	if n == -1 {
		return boxedMinusOne
	}
	return n
}

var boxedMinusOne any = int64(-1)

type stmtKey struct {
	spec *insertSpec
	n    int
}

// Job is one submission.
type Job struct {
	ID          int64
	Name        string
	SubmittedAt time.Time
}

// Task is one command, recorded at submit.
type Task struct {
	ID, JobID   int64
	ArrayIndex  int64    // -1 when not an array task
	Argv        []string // stored as JSON text
	Env         []string // K=V, stored as JSON text
	Cwd         string
	Timeout     time.Duration // stored as timeout_s REAL, 0 = none
	Retries     int
	Priority    int
	Noop        bool
	StdoutPath  string
	StderrPath  string
	SubmittedAt time.Time
	// The size it asked for, 0 = not asked (submit --cores, --gpus,
	// --mem, --nodes, --ranks-per-node).
	Cores, GPUs         int
	MemBytes            int64
	Nodes, RanksPerNode int
}

// Result is the final outcome of a task (one per task, insert-only).
type Result struct {
	TaskID           int64
	State            string // succeeded, failed, cancelled
	ExitCode, Signal int
	ErrorKind        string // "", exit, signal, timeout, spawn, manager_lost, cancelled
	Error            string
	Attempts         int
	BlockID          int64
	PoolID, Node     string
	Rank             int
	StartedAt        time.Time
	EndedAt          time.Time
	Stdout, Stderr   []byte
	Got              *Got // nil = nothing got worth saying
}

// Attempt is one ended attempt of a task, including lost ones.
type Attempt struct {
	TaskID    int64
	Attempt   int
	PoolID    string
	BlockID   int64
	Node      string
	State     string
	ErrorKind string
	ExitCode  int
	StartedAt time.Time
	EndedAt   time.Time
	Got       *Got // nil = nothing to say
}

// Block is a batch job of the scheduler; upserted by ID.
type Block struct {
	ID          int64
	JobID       string // the scheduler's job id
	Provider    string
	State       string
	Nodes       int
	SubmittedAt time.Time
	UpdatedAt   time.Time
	EndedAt     time.Time // zero = not ended
	Message     string
	StderrPath  string
	ScriptPath  string
}

// Pool is a worker pool (one per node of a block); upserted by ID.
type Pool struct {
	ID           string
	BlockID      int64
	Node         string
	Hostname     string
	CPUs         int
	MemoryGB     float64
	Slots        int
	RegisteredAt time.Time
	LostAt       time.Time // zero = not lost
}

// Event is a line of the daemon's history (block submitted, pool lost, ...).
type Event struct {
	At      time.Time
	Kind    string
	BlockID int64
	PoolID  string
	TaskID  int64
	Message string
}

// EventRow is an Event with its id (events.id, increasing).
type EventRow struct {
	ID    int64
	Event Event
}

// Batch is what one Write commits.
type Batch struct {
	Jobs     []Job
	Tasks    []Task
	Results  []Result
	Attempts []Attempt
	Blocks   []Block
	Pools    []Pool
	Events   []Event
}

// Empty reports whether b holds nothing to write.
func (b *Batch) Empty() bool {
	return b == nil || len(b.Jobs) == 0 && len(b.Tasks) == 0 && len(b.Results) == 0 &&
		len(b.Attempts) == 0 && len(b.Blocks) == 0 && len(b.Pools) == 0 && len(b.Events) == 0
}

// Reset empties b and keeps its slices' capacity for the next batch.
func (b *Batch) Reset() {
	clear(b.Jobs)
	clear(b.Tasks)
	clear(b.Results)
	clear(b.Attempts)
	clear(b.Blocks)
	clear(b.Pools)
	clear(b.Events)
	*b = Batch{b.Jobs[:0], b.Tasks[:0], b.Results[:0], b.Attempts[:0], b.Blocks[:0], b.Pools[:0], b.Events[:0]}
}

// connector opens mattn/go-sqlite3 connections for one DSN, with an optional
// hook, without registering a driver name globally.
type connector struct {
	dsn string
	drv *sqlite3.SQLiteDriver
}

func (c *connector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c *connector) Driver() driver.Driver                        { return c.drv }

func execAll(c *sqlite3.SQLiteConn, stmts []string) error {
	for _, s := range stmts {
		if _, err := c.Exec(s, nil); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// Open opens the journal at path, creating it and its schema when new. It
// refuses a file that is not an htex journal or whose schema version is
// newer than this package's, and one emptied since (checkNotEmptied).
func Open(path string) (*Journal, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := checkNotEmptied(abs); err != nil {
		return nil, err
	}
	if err := createComplete(abs); err != nil {
		return nil, err
	}
	return openFile(abs)
}

// openFile opens the journal file at abs, creating its schema when the file
// is new or absent.
func openFile(abs string) (*Journal, error) {
	uri := "file:" + (&url.URL{Path: abs}).EscapedPath() + "?"
	w := sql.OpenDB(&connector{dsn: uri + dsnWriter, drv: &sqlite3.SQLiteDriver{
		ConnectHook: func(c *sqlite3.SQLiteConn) error { return execAll(c, pragmasWriter) },
	}})
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	j := &Journal{path: abs, w: w, stmts: map[stmtKey]driver.Stmt{}}
	err := j.initSchema()
	if err == nil {
		err = j.withConn(func(*sqlite3.SQLiteConn) error { return nil }) // prepares
	}
	if err != nil {
		j.closeStmts()
		w.Close()
		return nil, fmt.Errorf("journal: open %s: %w", abs, err)
	}
	j.r = sql.OpenDB(&connector{dsn: uri + dsnReader, drv: &sqlite3.SQLiteDriver{}})
	j.r.SetMaxOpenConns(readConns)
	j.r.SetMaxIdleConns(readConns)
	if err := j.r.Ping(); err != nil {
		j.r.Close()
		j.closeStmts()
		w.Close()
		return nil, fmt.Errorf("journal: open %s for reading: %w", abs, err)
	}
	return j, nil
}

func (j *Journal) initSchema() error {
	var mode string
	if err := j.w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if mode != "wal" {
		return fmt.Errorf("cannot use WAL mode (journal_mode is %q); is the file on a filesystem without shared memory support?", mode)
	}
	tx, err := j.w.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRow(sqlMetaTableExists).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		var others int
		if err := tx.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'`).Scan(&others); err != nil {
			return err
		}
		if others > 0 {
			return errors.New("not an htex journal (SQLite database without a meta table)")
		}
		for _, s := range schema {
			if _, err := tx.Exec(s); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
		if err := migrate(tx, 1); err != nil {
			return err
		}
		if _, err := tx.Exec(sqlInitMeta, strconv.Itoa(SchemaVersion), time.Now().UTC().Format(time.RFC3339)); err != nil {
			return err
		}
		return tx.Commit()
	}
	var v string
	if err := tx.QueryRow(sqlGetMeta, "schema_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	ver, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("bad schema version %q in meta", v)
	}
	if ver > SchemaVersion {
		return fmt.Errorf("journal schema version %d is newer than this htex supports (%d); use a newer htex to open it", ver, SchemaVersion)
	}
	if ver < SchemaVersion {
		if err := migrate(tx, ver); err != nil {
			return err
		}
		if _, err := tx.Exec(sqlSetVersion, strconv.Itoa(SchemaVersion)); err != nil {
			return fmt.Errorf("record schema version %d: %w", SchemaVersion, err)
		}
	}
	return tx.Commit()
}

// Path returns the absolute path of the database file.
func (j *Journal) Path() string { return j.path }

// Close closes the journal. The last connection to close checkpoints the
// WAL into the database file.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	j.closeStmts()
	err := j.r.Close()
	if _, e := j.w.Exec(sqlOptimize); e != nil && err == nil {
		err = e
	}
	if e := j.w.Close(); e != nil && err == nil {
		err = e
	}
	return err
}

func (j *Journal) closeStmts() {
	for _, s := range j.stmts {
		s.Close()
	}
	clear(j.stmts)
	j.stmtConn = nil
}

// DiscardWrites makes every later Write succeed without writing anything.
// It exists for one purpose: `htexctl bench --journal=false` measures what
// the journal costs. A daemon never runs like this.
func (j *Journal) DiscardWrites() {
	j.mu.Lock()
	j.discard = true
	j.mu.Unlock()
}
