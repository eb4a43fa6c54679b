package journal

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"
)

// The read side: queries on the pool of read-only connections.

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
