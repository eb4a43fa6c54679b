package journal

import (
	"errors"
	"fmt"
	"os"
)

// ErrEmptied reports a journal file of 0 bytes with nothing in its WAL.
var ErrEmptied = errors.New("the journal is empty")

// checkNotEmptied refuses a journal file that exists with 0 bytes and no
// write-ahead log to recover from. SQLite would take it for a new
// database, and the daemon would start a fresh run in a run directory
// that holds an earlier one (job ids from 1 again, beside the old blocks'
// files). A new journal's file can have 0 bytes only while its first
// writes are in the WAL (-wal), which SQLite recovers.
func checkNotEmptied(path string) error {
	st, err := os.Stat(path)
	if err != nil || st.Size() > 0 {
		return nil // absent: a new journal; any error shows when SQLite opens it
	}
	if wal, err := os.Stat(path + "-wal"); err == nil && wal.Size() > 0 {
		return nil
	}
	return fmt.Errorf("journal: %s has 0 bytes: %w (truncated, or copied while empty); htex will not start a fresh run over it. "+
		"Restore it from a copy, or move the run directory aside (or delete %s) to start a new run",
		path, ErrEmptied, path)
}
