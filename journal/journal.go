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
	"math"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

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

// Write commits b in one transaction: all of it or, on error, nothing; an
// error is a *WriteError that says whether the same batch may be written
// again.
// Jobs, tasks, results and attempts are inserted (a duplicate id of a job,
// task or result fails the whole batch); blocks and pools are upserted by
// id (a zero time never erases a recorded one); events are appended.
func (j *Journal) Write(b *Batch) error {
	if b.Empty() {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return ErrClosed
	}
	if j.discard {
		return nil
	}
	return classify(j.path, j.withConn(func(c *sqlite3.SQLiteConn) error {
		if _, err := c.Exec("BEGIN IMMEDIATE", nil); err != nil {
			return fmt.Errorf("journal: begin: %w", err)
		}
		if err := j.writeTx(b); err != nil {
			c.Exec("ROLLBACK", nil)
			return err
		}
		if _, err := c.Exec("COMMIT", nil); err != nil {
			c.Exec("ROLLBACK", nil)
			return fmt.Errorf("journal: commit: %w", err)
		}
		return nil
	}))
}

// withConn runs f on the writer's driver connection, with the insert
// statements prepared on it (j.mu held, or at Open).
func (j *Journal) withConn(f func(c *sqlite3.SQLiteConn) error) error {
	conn, err := j.w.Conn(context.Background())
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*sqlite3.SQLiteConn)
		if !ok {
			return fmt.Errorf("journal: writer connection is a %T", dc)
		}
		if c != j.stmtConn {
			j.closeStmts()
			if err := j.prepare(c); err != nil {
				j.closeStmts()
				return err
			}
			j.stmtConn = c
		}
		return f(c)
	})
}

func (j *Journal) writeTx(b *Batch) error {
	if err := insertRows(j, insJobs, b.Jobs, argsJob); err != nil {
		return err
	}
	if err := insertRuns(j, insTasks, insTasksSized, b.Tasks, (*Task).sized, argsTask, argsTaskSized); err != nil {
		return err
	}
	if err := insertRows(j, insBlocks, b.Blocks, argsBlock); err != nil {
		return err
	}
	if err := insertRows(j, insPools, b.Pools, argsPool); err != nil {
		return err
	}
	if err := insertRuns(j, insAttempts, insAttemptsGot, b.Attempts, func(a *Attempt) bool { return !a.Got.empty() },
		argsAttempt, argsAttemptGot); err != nil {
		return err
	}
	if err := insertRuns(j, insResults, insResultsGot, b.Results, func(r *Result) bool { return !r.Got.empty() },
		argsResult, argsResultGot); err != nil {
		return err
	}
	return insertRows(j, insEvents, b.Events, argsEvent)
}

// insertRows writes rows with multi-row INSERTs of maxRowsPerInsert rows,
// then of the powers of two that make up the rest.
func insertRows[T any](j *Journal, spec *insertSpec, rows []T, add func(*Journal, []any, *T) []any) error {
	for len(rows) > 0 {
		n := maxRowsPerInsert
		for n > len(rows) {
			n >>= 1
		}
		args := j.args[:0]
		for i := range rows[:n] {
			args = add(j, args, &rows[i])
		}
		err := j.execInsert(j.stmts[stmtKey{spec, n}], args)
		clear(args)
		j.args = args[:0]
		if err != nil {
			return fmt.Errorf("journal: insert into %s: %w", spec.table, err)
		}
		rows = rows[n:]
	}
	return nil
}

// execInsert runs an INSERT through the driver's Query instead of Exec:
// go-sqlite3 binds Query arguments and takes the first step in one cgo
// call, where Exec makes one cgo call per argument (~28,000 per Write of
// 1,000 tasks and 1,000 results). The statement returns no rows; an error
// (a duplicate key) comes from that first step.
func (j *Journal) execInsert(st driver.Stmt, args []any) error {
	if cap(j.named) < len(args) {
		j.named = make([]driver.NamedValue, len(args))
		for i := range j.named {
			j.named[i].Ordinal = i + 1
		}
	}
	named := j.named[:len(args)]
	for i, v := range args {
		named[i].Value = v
	}
	rows, err := st.(driver.StmtQueryContext).QueryContext(context.Background(), named)
	for i := range named {
		named[i].Value = nil
	}
	if err != nil {
		return err
	}
	return rows.Close()
}

// prepare prepares the insert statements of every table for every row
// count insertRows uses, on the writer's driver connection.
func (j *Journal) prepare(c *sqlite3.SQLiteConn) error {
	for _, spec := range []*insertSpec{insJobs, insTasks, insTasksSized, insResults, insResultsGot, insAttempts, insAttemptsGot,
		insBlocks, insPools, insEvents} {
		for n := maxRowsPerInsert; n >= 1; n >>= 1 {
			s, err := c.Prepare(spec.sql(n))
			if err != nil {
				return fmt.Errorf("prepare insert into %s: %w", spec.table, err)
			}
			j.stmts[stmtKey{spec, n}] = s
		}
	}
	return nil
}

// Argument builders, in the column order of sql.go.

func argsJob(_ *Journal, a []any, r *Job) []any {
	return append(a, r.ID, r.Name, unixTime(r.SubmittedAt))
}

func argsTask(j *Journal, a []any, r *Task) []any {
	c := &j.lastArgv
	if c.argvJSON == nil || !slices.Equal(c.argv, r.Argv) {
		j.buf = appendJSONStrings(j.buf[:0], r.Argv)
		c.argv, c.argvJSON = slices.Clone(r.Argv), string(j.buf)
	}
	if c.envJSON == nil || !slices.Equal(c.env, r.Env) {
		j.buf = appendJSONStrings(j.buf[:0], r.Env)
		c.env, c.envJSON = slices.Clone(r.Env), string(j.buf)
	}
	return append(a, r.ID, r.JobID, boxInt64(r.ArrayIndex), c.argvJSON, c.envJSON, r.Cwd, r.Timeout.Seconds(),
		int64(r.Retries), int64(r.Priority), boolInt(r.Noop), r.StdoutPath, r.StderrPath, unixTime(r.SubmittedAt))
}

func argsResult(j *Journal, a []any, r *Result) []any {
	return append(a, r.TaskID, j.state.box(r.State), boxInt64(int64(r.ExitCode)), int64(r.Signal), j.errorKind.box(r.ErrorKind), r.Error,
		int64(r.Attempts), r.BlockID, j.pool.box(r.PoolID), j.node.box(r.Node), int64(r.Rank), unixTime(r.StartedAt), unixTime(r.EndedAt),
		blob(r.Stdout), blob(r.Stderr))
}

func argsAttempt(j *Journal, a []any, r *Attempt) []any {
	return append(a, r.TaskID, int64(r.Attempt), j.pool.box(r.PoolID), r.BlockID, j.node.box(r.Node), j.state.box(r.State), j.errorKind.box(r.ErrorKind),
		boxInt64(int64(r.ExitCode)), unixTime(r.StartedAt), unixTime(r.EndedAt))
}

func argsBlock(_ *Journal, a []any, r *Block) []any {
	return append(a, r.ID, r.JobID, r.Provider, r.State, int64(r.Nodes), unixTime(r.SubmittedAt),
		unixTime(r.UpdatedAt), unixTime(r.EndedAt), r.Message, r.StderrPath, r.ScriptPath)
}

func argsPool(_ *Journal, a []any, r *Pool) []any {
	return append(a, r.ID, r.BlockID, r.Node, r.Hostname, int64(r.CPUs), r.MemoryGB, int64(r.Slots),
		unixTime(r.RegisteredAt), unixTime(r.LostAt))
}

func argsEvent(_ *Journal, a []any, r *Event) []any {
	at := r.At
	if at.IsZero() {
		at = time.Now()
	}
	return append(a, unixTime(at), r.Kind, r.BlockID, r.PoolID, r.TaskID, r.Message)
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// blob stores an empty output as NULL.
func blob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// unixTime is t as REAL unix seconds (microsecond precision survives the
// round trip); the zero time is NULL.
func unixTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return float64(t.Unix()) + float64(t.Nanosecond())*1e-9
}

// timeOf reverses unixTime, rounded to the microsecond.
func timeOf(f sql.NullFloat64) time.Time {
	if !f.Valid {
		return time.Time{}
	}
	sec := math.Floor(f.Float64)
	us := math.Round((f.Float64 - sec) * 1e6)
	return time.Unix(int64(sec), int64(us)*1000)
}

// appendJSONStrings appends ss as a JSON array of strings (no HTML
// escaping; a byte that is not valid UTF-8 becomes \udc80..\udcff, see
// parseStrings).
func appendJSONStrings(buf []byte, ss []string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '[')
	for i, s := range ss {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		for k := 0; k < len(s); {
			c := s[k]
			if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
				buf = append(buf, c)
				k++
				continue
			}
			if c >= utf8.RuneSelf {
				r, size := utf8.DecodeRuneInString(s[k:])
				if r == utf8.RuneError && size == 1 {
					buf = append(buf, '\\', 'u', 'd', 'c', hex[c>>4], hex[c&0xf])
				} else {
					buf = append(buf, s[k:k+size]...)
				}
				k += size
				continue
			}
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			k++
		}
		buf = append(buf, '"')
	}
	return append(buf, ']')
}

// ---- reads ----

func (j *Journal) reader() (*sql.DB, error) {
	j.mu.Lock()
	closed := j.closed
	j.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	return j.r, nil
}

// taskScan holds the scan targets of a tasks row (colsTasks).
type taskScan struct {
	t           Task
	argv, env   sql.RawBytes
	timeout     float64
	retries     int64
	priority    int64
	noop        int64
	submittedAt sql.NullFloat64
	cores, gpus int64
	nodes       int64
	ranks       int64
}

func (s *taskScan) dest() []any {
	return []any{&s.t.ID, &s.t.JobID, &s.t.ArrayIndex, &s.argv, &s.env, &s.t.Cwd, &s.timeout,
		&s.retries, &s.priority, &s.noop, &s.t.StdoutPath, &s.t.StderrPath, &s.submittedAt,
		&s.cores, &s.gpus, &s.t.MemBytes, &s.nodes, &s.ranks}
}

func (s *taskScan) task() (Task, error) {
	t := s.t
	var err error
	if t.Argv, err = parseStrings(s.argv); err != nil {
		return t, fmt.Errorf("journal: task %d: argv: %w", t.ID, err)
	}
	if t.Env, err = parseStrings(s.env); err != nil {
		return t, fmt.Errorf("journal: task %d: env: %w", t.ID, err)
	}
	t.Timeout = time.Duration(math.Round(s.timeout * float64(time.Second)))
	t.Retries = int(s.retries)
	t.Priority = int(s.priority)
	t.Noop = s.noop != 0
	t.SubmittedAt = timeOf(s.submittedAt)
	t.Cores, t.GPUs, t.Nodes, t.RanksPerNode = int(s.cores), int(s.gpus), int(s.nodes), int(s.ranks)
	return t, nil
}

// resultScan holds the scan targets of a results row (colsResults), all
// nullable because of the LEFT JOIN in Rows.
type resultScan struct {
	taskID                     sql.NullInt64
	state, errorKind, errMsg   sql.NullString
	exitCode, signal, attempts sql.NullInt64
	blockID, rank              sql.NullInt64
	poolID, node               sql.NullString
	startedAt, endedAt         sql.NullFloat64
	stdout, stderr             []byte
	cpus, gpus, nodes          sql.NullString
}

func (s *resultScan) dest() []any {
	return []any{&s.taskID, &s.state, &s.exitCode, &s.signal, &s.errorKind, &s.errMsg, &s.attempts,
		&s.blockID, &s.poolID, &s.node, &s.rank, &s.startedAt, &s.endedAt, &s.stdout, &s.stderr,
		&s.cpus, &s.gpus, &s.nodes}
}

func (s *resultScan) result() *Result {
	if !s.taskID.Valid {
		return nil
	}
	r := &Result{
		TaskID:    s.taskID.Int64,
		State:     s.state.String,
		ExitCode:  int(s.exitCode.Int64),
		Signal:    int(s.signal.Int64),
		ErrorKind: s.errorKind.String,
		Error:     s.errMsg.String,
		Attempts:  int(s.attempts.Int64),
		BlockID:   s.blockID.Int64,
		PoolID:    s.poolID.String,
		Node:      s.node.String,
		Rank:      int(s.rank.Int64),
		StartedAt: timeOf(s.startedAt),
		EndedAt:   timeOf(s.endedAt),
		Got:       gotOf(s.cpus.String, s.gpus.String, s.nodes.String),
	}
	if len(s.stdout) > 0 {
		r.Stdout = s.stdout
	}
	if len(s.stderr) > 0 {
		r.Stderr = s.stderr
	}
	s.stdout, s.stderr = nil, nil
	return r
}

// Unfinished returns the tasks that have no result, ordered by id, and the
// number of attempts recorded so far for each of them (only ids with at
// least one attempt are in the map). Both come from one snapshot.
func (j *Journal) Unfinished() ([]Task, map[int64]int, error) {
	db, err := j.reader()
	if err != nil {
		return nil, nil, err
	}
	tx, err := db.Begin()
	if err != nil {
		return nil, nil, fmt.Errorf("journal: unfinished: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.Query(sqlUnfinished)
	if err != nil {
		return nil, nil, fmt.Errorf("journal: unfinished: %w", err)
	}
	var tasks []Task
	var s taskScan
	dest := s.dest()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("journal: unfinished: %w", err)
		}
		t, err := s.task()
		if err != nil {
			rows.Close()
			return nil, nil, err
		}
		tasks = append(tasks, t)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("journal: unfinished: %w", err)
	}
	attempts, err := unfinishedAttempts(tx)
	if err != nil {
		return nil, nil, err
	}
	return tasks, attempts, nil
}

// MaxIDs returns the largest job, task and block ids recorded (0 if none),
// so that a restarted daemon continues numbering after them.
func (j *Journal) MaxIDs() (job, task, block int64, err error) {
	db, err := j.reader()
	if err != nil {
		return 0, 0, 0, err
	}
	if err := db.QueryRow(sqlMaxIDs).Scan(&job, &task, &block); err != nil {
		return 0, 0, 0, fmt.Errorf("journal: max ids: %w", err)
	}
	return job, task, block, nil
}

// Blocks returns the blocks ordered by id; activeOnly keeps those whose
// ended_at is NULL.
func (j *Journal) Blocks(activeOnly bool) ([]Block, error) {
	q := sqlBlocks
	if activeOnly {
		q = sqlActiveBlocks
	}
	return query(j, q, nil, func(rows *sql.Rows) (Block, error) {
		var b Block
		var nodes int64
		var sub, upd, end sql.NullFloat64
		err := rows.Scan(&b.ID, &b.JobID, &b.Provider, &b.State, &nodes, &sub, &upd, &end,
			&b.Message, &b.StderrPath, &b.ScriptPath)
		b.Nodes = int(nodes)
		b.SubmittedAt, b.UpdatedAt, b.EndedAt = timeOf(sub), timeOf(upd), timeOf(end)
		return b, err
	})
}

// Pools returns the pools ordered by registration; activeOnly keeps those
// whose lost_at is NULL.
func (j *Journal) Pools(activeOnly bool) ([]Pool, error) {
	q := sqlPools
	if activeOnly {
		q = sqlActivePools
	}
	return query(j, q, nil, func(rows *sql.Rows) (Pool, error) {
		var p Pool
		var cpus, slots int64
		var reg, lost sql.NullFloat64
		err := rows.Scan(&p.ID, &p.BlockID, &p.Node, &p.Hostname, &cpus, &p.MemoryGB, &slots, &reg, &lost)
		p.CPUs, p.Slots = int(cpus), int(slots)
		p.RegisteredAt, p.LostAt = timeOf(reg), timeOf(lost)
		return p, err
	})
}

// Jobs returns all jobs ordered by id.
func (j *Journal) Jobs() ([]Job, error) {
	return query(j, sqlJobs, nil, func(rows *sql.Rows) (Job, error) {
		var jb Job
		var sub sql.NullFloat64
		err := rows.Scan(&jb.ID, &jb.Name, &sub)
		jb.SubmittedAt = timeOf(sub)
		return jb, err
	})
}

// Attempts returns the recorded attempts of a task, in attempt order.
func (j *Journal) Attempts(taskID int64) ([]Attempt, error) {
	return query(j, sqlAttempts, []any{taskID}, func(rows *sql.Rows) (Attempt, error) {
		var a Attempt
		var n, exit int64
		var st, en sql.NullFloat64
		var cpus, gpus, nodes string
		err := rows.Scan(&a.TaskID, &n, &a.PoolID, &a.BlockID, &a.Node, &a.State, &a.ErrorKind, &exit, &st, &en,
			&cpus, &gpus, &nodes)
		a.Attempt, a.ExitCode, a.Got = int(n), int(exit), gotOf(cpus, gpus, nodes)
		a.StartedAt, a.EndedAt = timeOf(st), timeOf(en)
		return a, err
	})
}

// Events returns up to limit events with id > afterID, in order (limit <= 0:
// no limit).
func (j *Journal) Events(afterID int64, limit int) ([]EventRow, error) {
	return query(j, sqlEvents, []any{afterID, sqlLimit(limit)}, func(rows *sql.Rows) (EventRow, error) {
		var e EventRow
		var at sql.NullFloat64
		err := rows.Scan(&e.ID, &at, &e.Event.Kind, &e.Event.BlockID, &e.Event.PoolID, &e.Event.TaskID, &e.Event.Message)
		e.Event.At = timeOf(at)
		return e, err
	})
}

// Row is a task and its result (nil while unfinished).
type Row struct {
	Task   Task
	Result *Result
}

// Rows returns up to limit tasks with id > afterTaskID, ordered by id, with
// their results; jobID 0 means all jobs; limit <= 0 means no limit. Page
// through a large job by passing the last returned task id as afterTaskID.
func (j *Journal) Rows(jobID int64, afterTaskID int64, limit int) ([]Row, error) {
	q, args := sqlRowsAll, []any{afterTaskID, sqlLimit(limit)}
	if jobID != 0 {
		q, args = sqlRowsJob, []any{jobID, afterTaskID, sqlLimit(limit)}
	}
	var ts taskScan
	var rs resultScan
	dest := append(ts.dest(), rs.dest()...)
	return query(j, q, args, func(rows *sql.Rows) (Row, error) {
		if err := rows.Scan(dest...); err != nil {
			return Row{}, err
		}
		t, err := ts.task()
		return Row{Task: t, Result: rs.result()}, err
	})
}

// TasksAfter returns at most limit tasks (0 = all) after afterTaskID, of
// every job, in id order, without their results: what the interchange
// reads back for queued tasks it holds without their commands (a third
// of the cost of Rows, which joins each task's result).
func (j *Journal) TasksAfter(afterTaskID int64, limit int) ([]Task, error) {
	var ts taskScan
	dest := ts.dest()
	return query(j, sqlTasksAfter, []any{afterTaskID, sqlLimit(limit)}, func(rows *sql.Rows) (Task, error) {
		if err := rows.Scan(dest...); err != nil {
			return Task{}, err
		}
		return ts.task()
	})
}

// JobCount is the number of tasks of a job by final state; tasks without a
// result are Total - Succeeded - Failed - Cancelled.
type JobCount struct {
	JobID                               int64
	Name                                string
	Total, Succeeded, Failed, Cancelled int64
}

// JobCounts returns the counts of every job, ordered by job id. It scans
// tasks and results: meant for status commands, not for a hot loop.
func (j *Journal) JobCounts() ([]JobCount, error) {
	return query(j, sqlJobCounts, nil, func(rows *sql.Rows) (JobCount, error) {
		var c JobCount
		err := rows.Scan(&c.JobID, &c.Name, &c.Total, &c.Succeeded, &c.Failed, &c.Cancelled)
		return c, err
	})
}

// Meta returns the value of key in table meta, "" when absent.
func (j *Journal) Meta(key string) (string, error) {
	db, err := j.reader()
	if err != nil {
		return "", err
	}
	var v string
	err = db.QueryRow(sqlGetMeta, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("journal: meta %q: %w", key, err)
	}
	return v, nil
}

// SetMeta sets key to value in table meta (committed before it returns).
// The key schema_version is reserved.
func (j *Journal) SetMeta(key, value string) error {
	if key == "schema_version" {
		return errors.New("journal: meta key schema_version is reserved")
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return ErrClosed
	}
	if _, err := j.w.Exec(sqlSetMeta, key, value); err != nil {
		return fmt.Errorf("journal: set meta %q: %w", key, err)
	}
	return nil
}

// IntegrityCheck runs PRAGMA integrity_check and returns nil when it
// reports "ok".
func (j *Journal) IntegrityCheck() error {
	db, err := j.reader()
	if err != nil {
		return err
	}
	rows, err := db.Query(sqlIntegrityCheck)
	if err != nil {
		return fmt.Errorf("journal: integrity check: %w", err)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return fmt.Errorf("journal: integrity check: %w", err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("journal: integrity check: %w", err)
	}
	if len(msgs) == 1 && msgs[0] == "ok" {
		return nil
	}
	return fmt.Errorf("journal: integrity check failed: %q", msgs)
}

func sqlLimit(limit int) int64 {
	if limit <= 0 {
		return -1
	}
	return int64(limit)
}

// query runs q on the read pool and scans every row with scan.
func query[T any](j *Journal, q string, args []any, scan func(*sql.Rows) (T, error)) ([]T, error) {
	db, err := j.reader()
	if err != nil {
		return nil, err
	}
	rows, err := db.Query(q, args...)
	if err != nil {
		return nil, fmt.Errorf("journal: query: %w", err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("journal: scan: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("journal: query: %w", err)
	}
	return out, nil
}
