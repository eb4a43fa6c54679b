package scale

// How often the daemon asks the scheduler for its blocks' states.
//
// Shared schedulers ask their users to poll sparingly: every squeue or
// qstat is an RPC to the one controller of the whole machine. Parsl asks
// a Slurm, PBS or Torque provider every 60 s and a local one every 5 s:
// the status_polling_interval of its SlurmProvider, TorqueProvider (which
// PBSProProvider extends) and LocalProvider, which
// parsl/jobs/job_status_poller.py honours (reference/parsl-htex-internals.md
// section 8.1).
// htex asks once per poll for all blocks, every Interval (30 s by default
// for Slurm and PBS), and every Fast only while a block is changing
// state, when the answer matters at once: just submitted, a cancel sent,
// its pools lost, or its pools registered while the scheduler still
// says pending.

import "time"

// PollPolicy holds the polling options (provider.status_polling_interval
// and provider.status_polling_fast).
type PollPolicy struct {
	Interval time.Duration // steady state
	Fast     time.Duration // while a block changes state; at most Interval
	// FastFor is how long a block counts as changing after it was
	// submitted or its state last changed.
	FastFor time.Duration
}

// PollBlock is what the loop knows of one block that has not ended.
type PollBlock struct {
	Submitted  time.Time
	Changed    time.Time // when the daemon last saw its state change; zero = never
	Cancelling bool      // a cancel was sent, the end not seen yet
	PoolsLost  bool      // its pools were registered and are all gone
	Starting   bool      // its pools registered, the scheduler still says pending
}

// changing says why a block wants fast polling, or "".
func (b PollBlock) changing(p PollPolicy, now time.Time) string {
	switch {
	case b.Cancelling:
		return "cancel sent"
	case b.PoolsLost:
		return "pools lost"
	case b.Starting:
		return "pools registered"
	case now.Sub(b.Submitted) < p.FastFor:
		return "just submitted"
	case !b.Changed.IsZero() && now.Sub(b.Changed) < p.FastFor:
		return "state changed"
	}
	return ""
}

// PollInterval is the time to wait after a poll at now before the next
// one, and why it is the fast one ("" when it is not).
func PollInterval(p PollPolicy, now time.Time, blocks []PollBlock) (time.Duration, string) {
	fast := min(p.Fast, p.Interval)
	if fast <= 0 {
		fast = p.Interval
	}
	for _, b := range blocks {
		if why := b.changing(p, now); why != "" {
			return fast, why
		}
	}
	return p.Interval, ""
}
