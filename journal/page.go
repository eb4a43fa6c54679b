package journal

import (
	"fmt"
)

// RowsPage is Rows bounded in bytes as well as in rows: it stops before the
// row that would take the page's argv, env, tails and error text over
// maxBytes (a first row always goes in), so that a page of tasks with
// large outputs is read, held and sent in bounded memory. more reports
// that rows follow the page.
func (j *Journal) RowsPage(jobID, afterTaskID int64, limit, maxBytes int) (rows []Row, more bool, err error) {
	peek := sqlLimit(limit) // one row more than the page: is there more?
	if limit > 0 {
		peek++
	}
	q, args := sqlRowsAll, []any{afterTaskID, peek}
	if jobID != 0 {
		q, args = sqlRowsJob, []any{jobID, afterTaskID, peek}
	}
	db, err := j.reader()
	if err != nil {
		return nil, false, err
	}
	cur, err := db.Query(q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("journal: query: %w", err)
	}
	defer cur.Close()
	var ts taskScan
	var rs resultScan
	dest := append(ts.dest(), rs.dest()...)
	size := 0
	for cur.Next() {
		if len(rows) == limit {
			return rows, true, nil
		}
		if err := cur.Scan(dest...); err != nil {
			return nil, false, fmt.Errorf("journal: scan: %w", err)
		}
		t, err := ts.task()
		if err != nil {
			return nil, false, err
		}
		row := Row{Task: t, Result: rs.result()}
		n := rowBytes(row)
		if len(rows) > 0 && size+n > maxBytes {
			return rows, true, nil
		}
		size += n
		rows = append(rows, row)
	}
	if err := cur.Err(); err != nil {
		return nil, false, fmt.Errorf("journal: query: %w", err)
	}
	return rows, false, nil
}

// rowBytes estimates what a row weighs in memory and on the wire.
func rowBytes(r Row) int {
	n := 128 + len(r.Task.Cwd) + len(r.Task.StdoutPath) + len(r.Task.StderrPath)
	for _, s := range r.Task.Argv {
		n += len(s) + 2
	}
	for _, s := range r.Task.Env {
		n += len(s) + 2
	}
	if res := r.Result; res != nil {
		n += len(res.Stdout) + len(res.Stderr) + len(res.Error) + len(res.Node) + len(res.ErrorKind)
	}
	return n
}
