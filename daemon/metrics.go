package daemon

import (
	"github.com/htex/htex/interchange"
	"github.com/htex/htex/metrics"
	"github.com/htex/htex/wire"
)

// observer is the interchange's metrics observer: none without metrics
// (a nil interface, not a nil pointer, so the interchange skips the calls).
func observer(m *metrics.Metrics) interchange.Observer {
	if m == nil {
		return nil
	}
	return m
}

// metricsSnapshot is what a scrape reads: the interchange's latest stats
// (refreshed every 100 ms on its loop, read without stopping it) and the
// blocks as status shows them (a pending block with a pool registered is
// running).
func metricsSnapshot(st interchange.Stats, blocks []*wire.BlockStatus) metrics.Snapshot {
	s := metrics.Snapshot{Queued: st.Queued, Running: st.Running, Pools: len(st.Pools), Blocks: map[string]int{}}
	withPools := map[int64]bool{}
	for _, p := range st.Pools {
		s.Slots += p.Slots
		s.Busy += p.Busy
		withPools[p.BlockID] = true
	}
	for _, b := range blocks {
		state := b.State
		if state == "pending" && withPools[b.Id] {
			state = "running"
		}
		s.Blocks[state]++
	}
	return s
}
