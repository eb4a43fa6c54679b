package metrics

import (
	"testing"
	"time"
)

// BenchmarkPerTask is what the metrics add to each task on the daemon's
// loop: one dispatch observation and one result (counter, histogram); a
// journal batch observation is amortised over its rows.
func BenchmarkPerTask(b *testing.B) {
	m := New()
	for i := 0; b.Loop(); i++ {
		m.TaskDispatched(time.Millisecond)
		m.TaskFinished("succeeded", "", 2*time.Millisecond)
		if i%1000 == 0 {
			m.JournalCommitted(time.Millisecond, 1000)
		}
	}
}
