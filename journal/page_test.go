package journal

import (
	"slices"
	"testing"
)

// TestRowsPage: pages stop at the row count or before the row that would
// take them over the byte budget, a first row always goes in, and paging
// on the last id returns every row once.
func TestRowsPage(t *testing.T) {
	j, _ := open(t)
	b := &Batch{Jobs: []Job{{ID: 1, SubmittedAt: ts(0, 0)}, {ID: 2, SubmittedAt: ts(0, 0)}}}
	big := make([]byte, 1000)
	for id := int64(1); id <= 10; id++ {
		b.Tasks = append(b.Tasks, Task{ID: id, JobID: 1, ArrayIndex: -1, Argv: []string{"x"}, SubmittedAt: ts(0, 0)})
		r := Result{TaskID: id, State: "succeeded", StartedAt: ts(1, 0), EndedAt: ts(2, 0)}
		if id == 4 || id == 5 || id == 6 {
			r.Stdout = big
		}
		b.Results = append(b.Results, r)
	}
	b.Tasks = append(b.Tasks, Task{ID: 11, JobID: 2, ArrayIndex: -1, Argv: []string{"y"}, SubmittedAt: ts(0, 0)})
	mustWrite(t, j, b)

	tests := []struct {
		name          string
		job, after    int64
		limit, budget int
		want          []int64
		more          bool
	}{
		{"all of a job", 1, 0, 100, 1 << 20, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, false},
		{"count limit", 1, 0, 3, 1 << 20, []int64{1, 2, 3}, true},
		{"count limit at the end", 1, 7, 3, 1 << 20, []int64{8, 9, 10}, false},
		{"bytes stop before a big row", 1, 0, 100, 1000, []int64{1, 2, 3}, true},
		{"a big row alone over budget", 1, 3, 100, 500, []int64{4}, true},
		{"every job", 0, 9, 100, 1 << 20, []int64{10, 11}, false},
		{"nothing after the last", 1, 10, 100, 1 << 20, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, more, err := j.RowsPage(tt.job, tt.after, tt.limit, tt.budget)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, r := range rows {
				ids = append(ids, r.Task.ID)
			}
			if !slices.Equal(ids, tt.want) || more != tt.more {
				t.Fatalf("RowsPage(job %d, after %d, limit %d, budget %d) = %v more=%v, want %v more=%v",
					tt.job, tt.after, tt.limit, tt.budget, ids, more, tt.want, tt.more)
			}
		})
	}
	// paging with a small budget visits every row once, in order
	var seen []int64
	after := int64(0)
	for {
		rows, more, err := j.RowsPage(1, after, 4, 700)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			seen = append(seen, r.Task.ID)
			after = r.Task.ID
		}
		if !more {
			break
		}
	}
	if !slices.Equal(seen, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) {
		t.Fatalf("paging saw %v", seen)
	}
}
