package app

import (
	"testing"
	"time"
)

func TestWaitSummaryLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    waitSummary
		want string
	}{
		{"all succeeded", newWaitSummary(3, 1000, 1000, 0, 0, 12500*time.Millisecond),
			"job 3: 1000 succeeded, 0 failed of 1000; 1000 finished in 12.5 s, 80.0 tasks/s"},
		{"failures by kind, most first", func() waitSummary {
			s := newWaitSummary(4, 100, 90, 10, 40, 2*time.Second)
			s.FailedByKind = map[string]int64{"timeout": 2, "exit": 8}
			return s
		}(), "job 4: 90 succeeded, 10 failed of 100 (exit 8, timeout 2); 60 finished in 2.0 s, 30.0 tasks/s"},
		{"ties by name", func() waitSummary {
			s := newWaitSummary(5, 2, 0, 2, 0, time.Second)
			s.FailedByKind = map[string]int64{"signal": 1, "exit": 1}
			return s
		}(), "job 5: 0 succeeded, 2 failed of 2 (exit 1, signal 1); 2 finished in 1.0 s, 2.0 tasks/s"},
		{"done before the wait", newWaitSummary(6, 5, 5, 0, 5, 10*time.Millisecond),
			"job 6: 5 succeeded, 0 failed of 5; none finished while waiting"},
		{"every task of the daemon", newWaitSummary(0, 300000, 300000, 0, 0, 150*time.Second),
			"all tasks done: 300000 succeeded, 0 failed of 300000; 300000 finished in 2m30s, 2000 tasks/s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.Line(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
