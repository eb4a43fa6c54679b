package worker

import (
	"sync"
	"testing"
	"time"

	"github.com/htex/htex/pinning"
	"github.com/htex/htex/wire"
)

// TestBoardNeverSharesASlot runs a mix of tasks of one to four slots on a
// board of four slots with goroutines standing in for the slots: every
// task runs, on exactly the slots it needs, and no slot ever holds two
// running tasks.
func TestBoardNeverSharesASlot(t *testing.T) {
	slots := layoutOf(t, 4, pinning.Options{CoresPerWorker: 1, CPUAffinity: "block"})
	b := newBoard(slots, pinning.Shape{Slots: 4, CPUs: 1, MemBytes: 1 << 30}, nil)
	var mu sync.Mutex
	owner := make([]uint64, 4) // the task running on each slot, 0 = none
	ran := map[uint64][]int{}
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.release(r, nil)
			for {
				tk := b.wait(r)
				if tk == nil {
					return
				}
				ranks := b.heldBy(tk.Id)
				if ranks == nil {
					ranks = []int{r}
				}
				mu.Lock()
				for _, x := range ranks {
					if owner[x] != 0 {
						t.Errorf("slot %d runs task %d and %d", x, owner[x], tk.Id)
					}
					owner[x] = tk.Id
				}
				ran[tk.Id] = ranks
				mu.Unlock()
				time.Sleep(time.Duration(tk.Id%3) * time.Millisecond)
				mu.Lock()
				for _, x := range ranks {
					owner[x] = 0
				}
				mu.Unlock()
				b.release(r, tk)
			}
		}()
	}
	want := map[uint64]int{}
	for id := uint64(1); id <= 200; id++ {
		tk := &wire.Task{Id: id}
		switch id % 5 {
		case 1:
			tk.Cores = 2
		case 2:
			tk.Cores = 3
		case 3:
			tk.Cores = 1
		case 4:
			tk.Slots = 4
		}
		want[id] = slotsFor(tk, b.shape)
		b.push(tk)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(ran)
		mu.Unlock()
		if n == len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.close()
	wg.Wait()
	if len(ran) != len(want) {
		t.Fatalf("%d of %d tasks ran", len(ran), len(want))
	}
	for id, ranks := range ran {
		if len(ranks) != want[id] {
			t.Errorf("task %d ran on slots %v, want %d slots", id, ranks, want[id])
		}
	}
}
