package journal

import (
	"errors"
	"fmt"
	"syscall"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// ErrDiskFull is matched (errors.Is) by a write that failed because the
// file system of the journal is full or over quota.
var ErrDiskFull = errors.New("disk full")

// WriteError is a failed Write. Retryable tells a condition that may pass
// (a full disk, an I/O error, a lock held too long: the same batch may be
// written again once it does) from one that will not (a constraint
// violation: the batch itself is at fault, or another process writes the
// same journal).
type WriteError struct {
	Path      string
	Retryable bool
	Full      bool
	Err       error
}

func (e *WriteError) Error() string {
	if e.Full {
		return fmt.Sprintf("journal: disk full at %s: %v", e.Path, e.Err)
	}
	return fmt.Sprintf("journal: write to %s failed: %v", e.Path, e.Err)
}

func (e *WriteError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrDiskFull) true for a full disk.
func (e *WriteError) Is(target error) bool { return target == ErrDiskFull && e.Full }

// classify wraps an error of Write in a *WriteError.
func classify(path string, err error) error {
	if err == nil || errors.Is(err, ErrClosed) {
		return err
	}
	we := &WriteError{Path: path, Err: err, Retryable: true}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch {
		case se.Code == sqlite3.ErrFull, se.SystemErrno == syscall.ENOSPC, se.SystemErrno == syscall.EDQUOT:
			we.Full = true
		case se.Code == sqlite3.ErrConstraint, se.Code == sqlite3.ErrCorrupt, se.Code == sqlite3.ErrReadonly,
			se.Code == sqlite3.ErrMisuse, se.Code == sqlite3.ErrNotADB:
			we.Retryable = false
		}
	} else if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		we.Full = true
	}
	return we
}
