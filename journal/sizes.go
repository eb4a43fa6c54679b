package journal

// Version 2 of the schema: tasks of a size and what tasks got (see
// docs/journal.md, "Versions and migration"), and the migration to it.

import (
	"database/sql"
	"fmt"
	"strings"
)

// Got is what an attempt of a task got where it ran: its CPUs and
// accelerators as lists ("0-3,8", "0,1"; "" = not pinned, none) and, for
// a multi-node task, its nodes (stored as a comma list). Results and
// attempts hold a pointer, nil when there is nothing to say (a task of one
// slot), so that the rows of most tasks stay as small as they were.
type Got struct {
	CPUs, GPUs string
	Nodes      []string
}

// insertRuns writes rows with insertRows, each run of consecutive rows
// for which full reports the same with its statement: plain (fewer
// columns) or full.
func insertRuns[T any](j *Journal, plain, fullSpec *insertSpec, rows []T, full func(*T) bool,
	addPlain, addFull func(*Journal, []any, *T) []any) error {
	for len(rows) > 0 {
		f := full(&rows[0])
		n := 1
		for n < len(rows) && full(&rows[n]) == f {
			n++
		}
		spec, add := plain, addPlain
		if f {
			spec, add = fullSpec, addFull
		}
		if err := insertRows(j, spec, rows[:n], add); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

func argsTaskSized(j *Journal, a []any, r *Task) []any {
	return append(argsTask(j, a, r), int64(r.Cores), int64(r.GPUs), r.MemBytes, int64(r.Nodes), int64(r.RanksPerNode))
}

// sized reports whether a task asks for a size (its row needs the size
// columns).
func (t *Task) sized() bool {
	return t.Cores != 0 || t.GPUs != 0 || t.MemBytes != 0 || t.Nodes != 0 || t.RanksPerNode != 0
}

func (g *Got) empty() bool { return g == nil || g.CPUs == "" && g.GPUs == "" && len(g.Nodes) == 0 }

// gotOf is what a row's columns say was got, nil when nothing.
func gotOf(cpus, gpus, nodes string) *Got {
	if cpus == "" && gpus == "" && nodes == "" {
		return nil
	}
	return &Got{CPUs: cpus, GPUs: gpus, Nodes: splitNodes(nodes)}
}

func argsResultGot(j *Journal, a []any, r *Result) []any {
	return append(argsResult(j, a, r), r.Got.CPUs, r.Got.GPUs, joinNodes(r.Got.Nodes))
}

func argsAttemptGot(j *Journal, a []any, r *Attempt) []any {
	return append(argsAttempt(j, a, r), r.Got.CPUs, r.Got.GPUs, joinNodes(r.Got.Nodes))
}

// joinNodes stores a node list as a comma list ("" for none); splitNodes
// reverses it. Node names hold no commas (Slurm and PBS host names).
func joinNodes(nodes []string) string { return strings.Join(nodes, ",") }

func splitNodes(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// migrate runs the migrations from version from up to SchemaVersion.
func migrate(tx *sql.Tx, from int) error {
	for v := from; v < SchemaVersion; v++ {
		stmts, ok := migrations[v]
		if !ok {
			return fmt.Errorf("no migration from journal schema version %d", v)
		}
		for _, s := range stmts {
			if _, err := tx.Exec(s); err != nil {
				return fmt.Errorf("migrate the journal from schema version %d to %d: %s: %w", v, v+1, s, err)
			}
		}
	}
	return nil
}
