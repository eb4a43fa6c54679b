package journal

import (
	"database/sql"
	"errors"
	"fmt"
)

// SwapMeta sets meta key to value if it still holds old ("" = absent), in
// one write transaction, and returns what it held and whether it swapped.
// The daemon's lease on a run directory is kept this way, so that two
// daemons that both read a stale lease cannot both take it.
func (j *Journal) SwapMeta(key, old, value string) (current string, swapped bool, err error) {
	if key == "schema_version" {
		return "", false, errors.New("journal: meta key schema_version is reserved")
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return "", false, ErrClosed
	}
	tx, err := j.w.Begin()
	if err != nil {
		return "", false, fmt.Errorf("journal: swap meta %q: %w", key, err)
	}
	defer tx.Rollback()
	// An UPDATE first takes the write lock, so the read below sees the
	// latest row and nobody writes between the read and the write.
	if _, err := tx.Exec(`UPDATE meta SET value = value WHERE key = ?`, key); err != nil {
		return "", false, classify(j.path, err)
	}
	err = tx.QueryRow(sqlGetMeta, key).Scan(&current)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", false, fmt.Errorf("journal: swap meta %q: %w", key, err)
	}
	if current != old {
		return current, false, nil
	}
	if _, err := tx.Exec(sqlSetMeta, key, value); err != nil {
		return current, false, classify(j.path, err)
	}
	if err := tx.Commit(); err != nil {
		return current, false, classify(j.path, err)
	}
	return current, true, nil
}
