// Package gcpace sets the daemon's GOGC from the size of its live heap.
//
// At ordinary sizes the daemon keeps Go's default, GOGC=100: a busy
// interchange allocates fast (results, journal rows), and collecting
// twice as often cost 9 % of dispatch at 1,000 pools and raised status
// latency (bench --pools 1000 on 16 cores, docs/performance.md). A
// backlog of millions of queued tasks is different: the heap is then
// mostly long-lived tasks, which GOGC=100 lets double before a
// collection (10,000,000 queued commands: 1,690 MB at 100, 1,342 MB at
// 50). So above LargeHeap of live heap the daemon runs with GOGC=50, and
// goes back to 100 below NormalHeap (apart, so that it does not flip at
// the line). A GOGC in the environment is the user's choice and wins.
package gcpace

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

const (
	// NormalPercent and LargePercent are the GOGC values used.
	NormalPercent = 100
	LargePercent  = 50
	// LargeHeap and NormalHeap are the live-heap sizes at which the
	// daemon moves to LargePercent and back.
	LargeHeap  = 512 << 20
	NormalHeap = 384 << 20
)

// Percent is the GOGC for a live heap of live bytes when current is in
// force.
func Percent(live uint64, current int) int {
	switch {
	case live >= LargeHeap:
		return LargePercent
	case live < NormalHeap:
		return NormalPercent
	}
	return current
}

// Run looks at the live heap every period and sets GOGC by Percent until
// ctx ends. It returns at once when the environment sets GOGC.
func Run(ctx context.Context, period time.Duration) {
	if os.Getenv("GOGC") != "" {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	current := NormalPercent
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return // not measured by this runtime: leave GOGC alone
		}
		if p := Percent(sample[0].Value.Uint64(), current); p != current {
			debug.SetGCPercent(p)
			current = p
		}
	}
}
