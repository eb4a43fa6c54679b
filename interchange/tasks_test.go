package interchange

import (
	"math/rand/v2"
	"testing"
)

// TestTaskTable checks the table against a map through random adds and
// removals, each add at the time of its submit (a submit holds a few
// tasks), and that a page and the submission times go once their last
// task has finished.
func TestTaskTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var tt taskTable
	model := map[uint64]*task{}
	var live []uint64 // the model's ids, so that removals follow the seed
	submitted := map[uint64]int64{}
	now, left := int64(0), 0 // the submit's time, and its tasks still to add
	next := uint64(1)
	for step := range 20000 {
		if rng.IntN(3) > 0 || len(model) == 0 {
			if left == 0 { // a new submit, sometimes in the same ns as the last
				now += int64(rng.IntN(2)) * 1000
				left = 1 + rng.IntN(8)
			}
			left--
			next += uint64(rng.IntN(3)) // ids increase, with gaps
			tk := tt.add(task{id: next, jobID: 7}, now)
			model[next] = tk
			submitted[next] = now
			live = append(live, next)
			next++
		} else {
			i := rng.IntN(len(live))
			id := live[i]
			live[i] = live[len(live)-1]
			live = live[:len(live)-1]
			if got := tt.submittedAt(model[id]); got != submitted[id] {
				t.Fatalf("step %d: task %d submitted at %d, want %d", step, id, got, submitted[id])
			}
			tt.remove(model[id])
			delete(model, id)
			if tt.get(id) != nil {
				t.Fatalf("step %d: task %d found after its removal", step, id)
			}
		}
		if tt.get(0) != nil {
			t.Fatalf("step %d: get(0) found a task; ids start at 1", step)
		}
		if tt.len() != len(model) {
			t.Fatalf("step %d: len %d, want %d", step, tt.len(), len(model))
		}
	}
	for id, tk := range model {
		if got := tt.get(id); got != tk || got.jobID != 7 {
			t.Fatalf("get(%d) = %p, want %p", id, got, tk)
		}
		if got := tt.submittedAt(tk); got != submitted[id] {
			t.Fatalf("task %d submitted at %d, want %d", id, got, submitted[id])
		}
	}
	times := map[int64]bool{}
	for id := range model {
		times[submitted[id]] = true
	}
	if runs := tt.submitted.len(); runs > 2*len(times)+1 {
		t.Errorf("%d runs of submission times kept for %d distinct times of unfinished tasks", runs, len(times))
	}
	n := 0
	tt.each(func(tk *task) {
		if model[tk.id] != tk {
			t.Fatalf("each gave task %d, not in the model", tk.id)
		}
		n++
	})
	if n != len(model) {
		t.Fatalf("each gave %d tasks, want %d", n, len(model))
	}
	if tt.get(next+1000) != nil {
		t.Fatalf("get(%d) found a task never added", next+1000)
	}
	for id, tk := range model {
		tt.remove(tk)
		delete(model, id)
	}
	if len(tt.pages) != 0 || tt.len() != 0 || tt.submitted.len() != 0 {
		t.Errorf("%d pages, %d tasks and %d runs of submission times left after every task finished",
			len(tt.pages), tt.len(), tt.submitted.len())
	}
}
