package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ErrEmptied reports a journal file of 0 bytes with nothing in its WAL.
var ErrEmptied = errors.New("the journal is empty")

// checkNotEmptied refuses a journal file that exists with 0 bytes and no
// write-ahead log to recover from. SQLite would take it for a new
// database, and the daemon would start a fresh run in a run directory
// that holds an earlier one (job ids from 1 again, beside the old blocks'
// files). htex never leaves a journal of 0 bytes itself: createComplete
// makes a new one whole, under another name, before it takes the
// journal's name; and a journal's later writes go to its WAL (-wal), which
// SQLite recovers.
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

// createComplete makes a new journal at abs, when there is none, so that
// it never exists with 0 bytes: the schema is written and checkpointed into
// a file beside it, which is then renamed to abs. A daemon killed while
// creating its journal leaves only that side file, which the next start
// removes and makes again.
func createComplete(abs string) error {
	if _, err := os.Lstat(abs); !errors.Is(err, fs.ErrNotExist) {
		return nil // there is one (or it cannot be read: opening it says why)
	}
	tmp := abs + ".new"
	for _, p := range []string{tmp, tmp + "-wal", tmp + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("journal: remove a partly created journal: %w", err)
		}
	}
	j, err := openFile(tmp)
	if err != nil {
		return err
	}
	_, err = j.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	if cerr := j.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("journal: create %s: %w", abs, err)
	}
	if st, err := os.Stat(tmp); err != nil || st.Size() == 0 {
		return fmt.Errorf("journal: create %s: the new journal was not written (%v)", abs, err)
	}
	for _, p := range []string{tmp + "-wal", tmp + "-shm"} { // checkpointed: nothing in them
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("journal: create %s: %w", abs, err)
		}
	}
	if err := os.Rename(tmp, abs); err != nil {
		return fmt.Errorf("journal: create %s: %w", abs, err)
	}
	return nil
}
