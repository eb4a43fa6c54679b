package interchange

import "testing"

// TestSubmitTimes drives the table of submission times through adds (id,
// ns) and finishes (-id), checking the time of every unfinished task and
// how many runs are kept.
func TestSubmitTimes(t *testing.T) {
	type add struct {
		id uint64
		ns int64
	}
	for _, tc := range []struct {
		name string
		ops  []any // add or a finished id (uint64)
		want map[uint64]int64
		runs int
	}{
		{name: "one submit is one run",
			ops:  []any{add{1, 100}, add{2, 100}, add{3, 100}},
			want: map[uint64]int64{1: 100, 2: 100, 3: 100}, runs: 1},
		{name: "submits at other times",
			ops:  []any{add{1, 100}, add{2, 100}, add{3, 200}, add{4, 300}},
			want: map[uint64]int64{1: 100, 2: 100, 3: 200, 4: 300}, runs: 3},
		{name: "a restore with gaps and unknown times",
			ops:  []any{add{5, 0}, add{9, 0}, add{12, 700}, add{40, 700}, add{41, 800}},
			want: map[uint64]int64{5: 0, 9: 0, 12: 700, 40: 700, 41: 800}, runs: 3},
		{name: "a finished run stays until half are finished",
			ops:  []any{add{1, 100}, add{2, 200}, add{3, 300}, uint64(2)},
			want: map[uint64]int64{1: 100, 3: 300}, runs: 3},
		{name: "finished runs go once they are half",
			ops:  []any{add{1, 100}, add{2, 200}, add{3, 300}, uint64(2), uint64(1)},
			want: map[uint64]int64{3: 300}, runs: 1},
		{name: "a submit in the same ns joins the last run, finished or not",
			ops:  []any{add{1, 100}, add{2, 200}, uint64(2), add{3, 200}},
			want: map[uint64]int64{1: 100, 3: 200}, runs: 2},
		{name: "everything finished leaves nothing",
			ops:  []any{add{1, 100}, add{2, 100}, add{3, 200}, uint64(3), uint64(1), uint64(2)},
			want: map[uint64]int64{}, runs: 0},
		{name: "a run whose tasks finish out of order",
			ops:  []any{add{1, 100}, add{2, 100}, add{3, 100}, add{4, 200}, uint64(2), uint64(3), add{5, 300}},
			want: map[uint64]int64{1: 100, 4: 200, 5: 300}, runs: 3},
		{name: "after the first runs are dropped",
			ops: []any{add{1, 100}, add{2, 200}, add{3, 300}, add{4, 400}, uint64(1), uint64(2), uint64(3),
				add{5, 500}},
			want: map[uint64]int64{4: 400, 5: 500}, runs: 2},
		{name: "an id out of order counts in the run that covers it",
			ops:  []any{add{10, 100}, add{20, 200}, add{15, 300}, uint64(15)},
			want: map[uint64]int64{10: 100, 20: 200}, runs: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var st submitTimes
			for _, op := range tc.ops {
				switch op := op.(type) {
				case add:
					st.add(op.id, op.ns)
				case uint64:
					st.remove(op)
				}
			}
			for id, ns := range tc.want {
				if got := st.at(id); got != ns {
					t.Errorf("at(%d) = %d, want %d", id, got, ns)
				}
			}
			if st.len() != tc.runs {
				t.Errorf("%d runs kept, want %d: %+v", st.len(), tc.runs, st.runs)
			}
			live := 0
			for _, r := range st.runs {
				live += r.live
			}
			if live != len(tc.want) {
				t.Errorf("runs count %d unfinished tasks, want %d", live, len(tc.want))
			}
		})
	}
}
