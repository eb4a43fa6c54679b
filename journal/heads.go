package journal

import (
	"database/sql"
	"fmt"
	"math"
	"time"
)

// TaskHead is what the daemon keeps in memory of a queued task: what
// dispatch decides on, not the command (Task has it).
type TaskHead struct {
	ID, JobID   int64
	Timeout     time.Duration
	Retries     int
	Priority    int
	SubmittedAt time.Time
	// The size it asks for (Task), which dispatch decides on too.
	Cores, GPUs         int
	MemBytes            int64
	Nodes, RanksPerNode int
}

const sqlUnfinishedHeads = `SELECT t.id, t.job_id, t.timeout_s, t.retries, t.priority, t.submitted_at,
       t.cores, t.gpus, t.mem_bytes, t.nodes, t.ranks_per_node FROM tasks t
WHERE NOT EXISTS (SELECT 1 FROM results r WHERE r.task_id = t.id) ORDER BY t.id`

// UnfinishedHeads is Unfinished without the commands: the heads of the
// tasks that have no result, ordered by id, and the attempts recorded for
// them, from one snapshot. A restart reads millions of queued tasks this
// way and their commands only when they are about to run (Rows).
func (j *Journal) UnfinishedHeads() ([]TaskHead, map[int64]int, error) {
	db, err := j.reader()
	if err != nil {
		return nil, nil, err
	}
	tx, err := db.Begin()
	if err != nil {
		return nil, nil, fmt.Errorf("journal: unfinished heads: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.Query(sqlUnfinishedHeads)
	if err != nil {
		return nil, nil, fmt.Errorf("journal: unfinished heads: %w", err)
	}
	var heads []TaskHead
	for rows.Next() {
		var h TaskHead
		var timeout float64
		var retries, priority, cores, gpus, nodes, ranks int64
		var submitted sql.NullFloat64
		if err := rows.Scan(&h.ID, &h.JobID, &timeout, &retries, &priority, &submitted,
			&cores, &gpus, &h.MemBytes, &nodes, &ranks); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("journal: unfinished heads: %w", err)
		}
		h.Timeout = time.Duration(math.Round(timeout * float64(time.Second)))
		h.Retries, h.Priority, h.SubmittedAt = int(retries), int(priority), timeOf(submitted)
		h.Cores, h.GPUs, h.Nodes, h.RanksPerNode = int(cores), int(gpus), int(nodes), int(ranks)
		heads = append(heads, h)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("journal: unfinished heads: %w", err)
	}
	attempts, err := unfinishedAttempts(tx)
	if err != nil {
		return nil, nil, err
	}
	return heads, attempts, nil
}

// unfinishedAttempts counts the attempts of each unfinished task, for
// Unfinished and UnfinishedHeads, in their read transaction.
func unfinishedAttempts(tx *sql.Tx) (map[int64]int, error) {
	rows, err := tx.Query(sqlUnfinishedAttempts)
	if err != nil {
		return nil, fmt.Errorf("journal: unfinished attempts: %w", err)
	}
	defer rows.Close()
	attempts := map[int64]int{}
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("journal: unfinished attempts: %w", err)
		}
		attempts[id] = int(n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("journal: unfinished attempts: %w", err)
	}
	return attempts, nil
}
