package journal

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenRefusesEmptiedJournal(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "htex.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); !errors.Is(err, ErrEmptied) {
		t.Fatalf("Open of a 0-byte journal: %v, want ErrEmptied", err)
	}
	// a 0-byte file whose first writes are still in the WAL is recovered
	j, _ := open(t)
	mustWrite(t, j, sampleBatch())
	if err := os.WriteFile(path+"-wal", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkNotEmptied(path); err != nil {
		t.Fatalf("0 bytes beside a WAL: %v", err)
	}
	if err := checkNotEmptied(filepath.Join(dir, "absent.db")); err != nil {
		t.Fatalf("absent file: %v", err)
	}
}

// A new journal is never seen with 0 bytes, and what an interrupted
// creation left (the side file, empty or half made) is made again.
func TestNewJournalIsNeverEmpty(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "htex.db")
	for _, leftover := range []string{path + ".new", path + ".new-wal"} {
		if err := os.WriteFile(leftover, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	j, err := Open(path)
	if err != nil {
		t.Fatalf("Open beside what an interrupted creation left: %v", err)
	}
	defer j.Close()
	st, err := os.Stat(path)
	if err != nil || st.Size() == 0 {
		t.Fatalf("new journal: %v, size %d; want a file with its schema", err, st.Size())
	}
	for _, gone := range []string{path + ".new", path + ".new-wal", path + ".new-shm"} {
		if _, err := os.Stat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", gone, err)
		}
	}
	mustWrite(t, j, sampleBatch())
}
