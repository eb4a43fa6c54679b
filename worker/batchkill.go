package worker

import (
	"time"

	"github.com/htex/htex/wire"
)

// signalGrace is how long the result of a task that did not succeed is held
// back before it is reported, and how far before the pool's own SIGTERM a
// task may have ended and still count as ended by it. The batch system
// signals every process of the block at about the same moment (scancel,
// qdel, walltime, preemption: SIGTERM, then SIGKILL after a delay), so a
// task may end, and its slot report it, a little before the pool hears of
// its own end.
const signalGrace = time.Second

// fate is what the pool does with the result of a finished task.
type fate int

const (
	// report: send the result to the interchange.
	report fate = iota
	// hold: keep the result back until signalGrace after the task ended;
	// the batch system may be ending the pool.
	hold
	// lose: drop the result and keep the task among the pool's running
	// tasks, which the interchange counts as lost with the pool and runs
	// again elsewhere within their retry budget.
	lose
)

func (f fate) String() string {
	switch f {
	case report:
		return "report"
	case hold:
		return "hold"
	case lose:
		return "lose"
	}
	return "fate(?)"
}

// judge decides the fate of result r at time now. terminated is when the
// pool got its SIGTERM (the zero time while it has not).
//
// A task the pool ended itself (time limit, cancel) or could not start is
// reported as such: that is the pool's own verdict. Any other result that
// ended from signalGrace before the pool's SIGTERM on is lost with the
// pool, whatever its form: a shell reports its child's SIGTERM as exit
// status 143, an MPI launcher as 1, a program that traps SIGTERM may even
// exit 0 without having done its work. Before the pool has been signalled,
// a success is reported at once (nothing to fear) and any other result is
// held until signalGrace after it ended, then reported as it is.
func judge(r *wire.Result, now, terminated time.Time) fate {
	switch r.ErrorKind {
	case wire.ErrorKind_TIMEOUT, wire.ErrorKind_CANCELLED, wire.ErrorKind_SPAWN:
		return report
	}
	end := time.UnixMicro(r.EndUnixUs)
	if !terminated.IsZero() {
		if !end.Before(terminated.Add(-signalGrace)) {
			return lose
		}
		return report
	}
	if r.ErrorKind == wire.ErrorKind_NONE {
		return report
	}
	if now.Before(end.Add(signalGrace)) {
		return hold
	}
	return report
}
