package interchange

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

func queued(id uint64, prio int32) *task {
	return &task{id: id, priority: prio, state: stQueued}
}

// TestTaskQueueOrder checks the queue against a sorted list through random
// submissions, pops, re-queues of popped tasks (retries) and tasks that
// stop being queued while they wait (cancelled).
func TestTaskQueueOrder(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var q taskQueue
		var model []*task // queued tasks, in no particular order
		var popped []*task
		nextID := uint64(1)
		less := func(a, b *task) int {
			if c := cmp.Compare(b.priority, a.priority); c != 0 {
				return c
			}
			return cmp.Compare(a.id, b.id)
		}
		for step := range 400 {
			switch op := rng.IntN(10); {
			case op < 4: // a submission of a few tasks
				prio := int32(rng.IntN(3) - 1)
				for range 1 + rng.IntN(5) {
					tk := queued(nextID, prio)
					nextID++
					q.push(tk)
					model = append(model, tk)
				}
			case op < 7: // a pop
				got := q.pop()
				live := slices.DeleteFunc(model, func(tk *task) bool { return tk.state != stQueued })
				model = live
				if len(model) == 0 {
					if got != nil {
						t.Fatalf("seed %d step %d: pop = task %d from an empty queue", seed, step, got.id)
					}
					continue
				}
				want := slices.MinFunc(model, less)
				if got != want {
					t.Fatalf("seed %d step %d: pop = %v, want task %d (priority %d)", seed, step, got, want.id, want.priority)
				}
				model = slices.DeleteFunc(model, func(tk *task) bool { return tk == want })
				got.state = stRunning
				popped = append(popped, got)
			case op < 8 && len(popped) > 0: // a retry goes back in
				i := rng.IntN(len(popped))
				tk := popped[i]
				popped = slices.Delete(popped, i, i+1)
				tk.state = stQueued
				q.push(tk)
				model = append(model, tk)
			case op < 9 && len(model) > 0: // a cancel while queued
				model[rng.IntN(len(model))].state = stDone
			}
		}
		for {
			got := q.pop()
			model = slices.DeleteFunc(model, func(tk *task) bool { return tk.state != stQueued })
			if got == nil {
				if len(model) > 0 {
					t.Fatalf("seed %d: queue empty with %d tasks still queued", seed, len(model))
				}
				break
			}
			if want := slices.MinFunc(model, less); got != want {
				t.Fatalf("seed %d: final pop = task %d, want %d", seed, got.id, want.id)
			}
			model = slices.DeleteFunc(model, func(tk *task) bool { return tk == got })
		}
		if q.Len() != 0 {
			t.Fatalf("seed %d: Len = %d after the queue ran empty", seed, q.Len())
		}
	}
}

// BenchmarkTaskQueue: a million queued tasks of one priority, then popped.
func BenchmarkTaskQueue(b *testing.B) {
	const n = 1_000_000
	tasks := make([]*task, n)
	for i := range tasks {
		tasks[i] = queued(uint64(i+1), 0)
	}
	b.ResetTimer()
	for range b.N {
		var q taskQueue
		for _, tk := range tasks {
			q.push(tk)
		}
		for q.pop() != nil {
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "tasks/s")
}

// TestTaskFIFO pushes and pops across block boundaries against a slice.
func TestTaskFIFO(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var f taskFIFO
	var model []*task
	next := uint64(1)
	for step := range 5 * fifoBlock * 4 {
		if rng.IntN(5) < 3 || len(model) == 0 { // grows over time, empties at times
			tk := &task{id: next}
			next++
			f.push(tk)
			model = append(model, tk)
		} else {
			if got := f.pop(); got != model[0] {
				t.Fatalf("step %d: pop gave task %d, want %d", step, got.id, model[0].id)
			}
			model = model[1:]
		}
		if f.size != len(model) || (len(model) > 0 && (f.first() != model[0] || f.last() != model[len(model)-1])) {
			t.Fatalf("step %d: size %d first %v last %v, model has %d", step, f.size, f.first(), f.last(), len(model))
		}
		if len(model) == 0 && (f.first() != nil || f.last() != nil) {
			t.Fatalf("step %d: an empty FIFO returned a task", step)
		}
	}
	for len(model) > 0 {
		if got := f.pop(); got != model[0] {
			t.Fatalf("draining: pop gave task %d, want %d", got.id, model[0].id)
		}
		model = model[1:]
	}
	if len(f.blocks) > 1 {
		t.Errorf("%d blocks left in an empty FIFO, want at most one", len(f.blocks))
	}
}
