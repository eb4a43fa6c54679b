package interchange

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/htex/htex/journal"
)

// TestDoAfterRunReturns: once the loop has ended, Do answers ErrStopped
// at once instead of blocking for good (a daemon's shutdown calls Do on a
// loop that may have stopped on its own).
func TestDoAfterRunReturns(t *testing.T) {
	jr, err := journal.Open(filepath.Join(t.TempDir(), "htex.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer jr.Close()
	ix, err := New(Options{BindHost: "127.0.0.1", Journal: jr, HeartbeatPeriod: time.Second, HeartbeatThreshold: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	ran := false
	if err := ix.Do(context.Background(), func(*State) { ran = true }); err != nil || !ran {
		t.Fatalf("Do on a running loop: %v (ran %v)", err, ran)
	}
	cancel()
	<-done

	got := make(chan error, 1)
	go func() { got <- ix.Do(context.Background(), func(*State) {}) }()
	select {
	case err := <-got:
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("Do after Run returned: %v, want ErrStopped", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Do on a stopped loop blocked")
	}
	// Many calls: more than the command queue holds.
	for range 100 {
		if err := ix.Do(context.Background(), func(*State) {}); !errors.Is(err, ErrStopped) {
			t.Fatalf("Do: %v, want ErrStopped", err)
		}
	}
}
