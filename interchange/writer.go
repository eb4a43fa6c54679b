package interchange

import (
	"github.com/htex/htex/journal"
)

// writer commits journal batches on its own goroutine so that the loop
// keeps serving while SQLite writes; the loop hands it one batch at a time
// (group commit) and applies the batch's after-commit work when it is done.
type writer struct {
	j    *journal.Journal
	wake func()
	in   chan *journal.Batch
	out  chan error
	busy bool
}

func newWriter(j *journal.Journal, wake func()) *writer {
	return &writer{j: j, wake: wake, in: make(chan *journal.Batch), out: make(chan error, 1)}
}

// run is owned by Interchange.Run, which closes in and waits for it.
func (w *writer) run() {
	for b := range w.in {
		w.out <- w.j.Write(b)
		w.wake()
	}
	close(w.out)
}

func (w *writer) close() {
	close(w.in)
	for range w.out {
	}
}

// submit hands a batch to the writer (it must be idle).
func (w *writer) submit(b *journal.Batch) {
	w.busy = true
	w.in <- b
}

// collect returns the outcome of the batch in flight, if it has one yet.
func (w *writer) collect() (err error, done bool) {
	if !w.busy {
		return nil, false
	}
	select {
	case err := <-w.out:
		w.busy = false
		return err, true
	default:
		return nil, false
	}
}

// wait returns the outcome of the batch in flight, waiting for it.
func (w *writer) wait() (err error, done bool) {
	if !w.busy {
		return nil, false
	}
	w.busy = false
	return <-w.out, true
}
