package journal

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math"
	"slices"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// The write side: one transaction per Batch, multi-row INSERTs of
// prepared statements (sql.go), and the argument builders.

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
