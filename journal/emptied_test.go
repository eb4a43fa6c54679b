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
