package worker

import (
	"sync"
	"time"

	"github.com/htex/htex/wire"
)

// resultCoalesce is how long the pool's loop may hold finished results to
// send several in one message. It holds them only while every slot has a
// task to run, so that holding costs no slot any work: a result that frees
// a slot with nothing queued goes out at once, and so does the result of a
// pool's last running task (single-task latency is not touched).
const resultCoalesce = 2 * time.Millisecond

// finished hands results from the slots to the pool's loop.
type finished struct {
	mu       sync.Mutex
	slots    int
	results  []*wire.Result
	inFlight int  // tasks given to the slots and not yet finished
	armed    bool // the loop holds results and looks again at a set time
}

// started counts n tasks given to the slots (loop).
func (f *finished) started(n int) {
	f.mu.Lock()
	f.inFlight += n
	f.mu.Unlock()
}

// post hands over a slot's result and reports whether the loop must be
// woken: it is not when the loop holds results and will look anyway, and
// a slot is not left without work.
func (f *finished) post(r *wire.Result) (wake bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.results = append(f.results, r)
	f.inFlight--
	return !f.armed || f.inFlight < f.slots
}

// take appends the posted results to dst (loop) and reports whether
// holding results would keep any slot waiting for work.
func (f *finished) take(dst []*wire.Result) (out []*wire.Result, slotsFed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out = append(dst, f.results...)
	clear(f.results)
	f.results = f.results[:0]
	return out, f.inFlight >= f.slots
}

// arm tells the slots that the loop holds results and will look again by
// itself (loop).
func (f *finished) arm() {
	f.mu.Lock()
	f.armed = true
	f.mu.Unlock()
}

// disarm makes the slots wake the loop again, and reports whether results
// were posted while it was armed, which the loop must then take (loop).
func (f *finished) disarm() (posted bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed = false
	return len(f.results) > 0
}
