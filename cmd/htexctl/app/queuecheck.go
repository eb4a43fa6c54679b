package app

import (
	"fmt"
	"strings"

	"github.com/htex/htex/config"
	"github.com/htex/htex/queues"
)

// queueWarnings judges a PBS config's block against the queue table of
// the machine its label names (package queues: "polaris", "aurora", or a
// label that starts with one of them and a "-", e.g. "polaris-mps"). A
// block outside its queue's node or walltime range is refused at qsub or,
// through a routing queue, accepted and silently dropped, so config check
// says so before a block is ever submitted. Other machines and queues the
// table does not know get no warning. Without a queue, ALCF's default
// (prod) is judged.
func queueWarnings(cfg *config.Config) []string {
	p := cfg.Provider
	if p.Kind != "pbs" {
		return nil
	}
	m, ok := queues.Lookup(cfg.Executor.Label)
	if !ok {
		first, _, _ := strings.Cut(cfg.Executor.Label, "-")
		if m, ok = queues.Lookup(first); !ok {
			return nil
		}
	}
	queue, note := p.Queue, ""
	if queue == "" {
		queue, note = "prod", " (no provider.queue: the default queue prod)"
	}
	walltime, err := p.WalltimeDuration()
	if err != nil {
		walltime = 0 // validation has reported it
	}
	if err := m.Check(queue, p.NodesPerBlock, walltime); err != nil {
		return []string{fmt.Sprintf("provider.nodes_per_block %d, provider.walltime %q, provider.queue %q%s: %v; PBS refuses such a block, or its routing queue accepts it and drops it without a word",
			p.NodesPerBlock, p.Walltime, queue, note, err)}
	}
	return nil
}
