package worker

import (
	"testing"
	"time"
)

func TestStopState(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	limit := 4 * time.Second
	type step struct {
		ev   stopEvent
		at   time.Duration
		want stopAction
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"running pool: nothing", []step{{noStopEvent, 0, leaveTasks}, {noStopEvent, time.Hour, leaveTasks}}},
		{"short stop: freeze then thaw", []step{
			{poolStopped, 0, freezeTasks}, {noStopEvent, time.Second, leaveTasks}, {poolContinued, 2 * time.Second, thawTasks}}},
		{"long stop: freeze, kill once at the limit, no thaw", []step{
			{poolStopped, 0, freezeTasks}, {noStopEvent, limit - time.Millisecond, leaveTasks},
			{noStopEvent, limit, killTasks}, {noStopEvent, limit + time.Second, leaveTasks},
			{poolContinued, 10 * time.Second, leaveTasks}}},
		{"stopped twice in a row counts from the first", []step{
			{poolStopped, 0, freezeTasks}, {poolStopped, 3 * time.Second, leaveTasks}, {noStopEvent, limit, killTasks}}},
		{"a second stop after a continue starts afresh", []step{
			{poolStopped, 0, freezeTasks}, {poolContinued, time.Second, thawTasks},
			{poolStopped, 2 * time.Second, freezeTasks}, {noStopEvent, 2*time.Second + limit - time.Millisecond, leaveTasks},
			{noStopEvent, 2*time.Second + limit, killTasks}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s stopState
			for i, st := range tc.steps {
				if got := s.step(st.ev, t0.Add(st.at), limit); got != st.want {
					t.Fatalf("step %d (event %d at %s): action %d, want %d", i, st.ev, st.at, got, st.want)
				}
			}
		})
	}
}
