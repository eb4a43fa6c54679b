package interchange

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/htex/htex/journal"
	"github.com/htex/htex/wire"
)

// writer commits journal batches on its own goroutine so that the loop
// keeps serving while SQLite writes; the loop hands it one batch at a time
// (group commit) and applies the batch's after-commit work when it is done.
//
// A batch that fails for a reason that may pass (a full disk, an I/O
// error) is written again, with a growing pause, until it commits or the
// loop ends: meanwhile the loop refuses submissions (failing says why) and
// keeps the results it receives unacknowledged, so that the pools keep
// them as well; nothing committed or acknowledged is lost, and the daemon
// resumes by itself when space returns.
type writer struct {
	j       *journal.Journal
	wake    func()
	in      chan *journal.Batch
	out     chan error
	quit    chan struct{} // closed by close: stop retrying
	failing atomic.Pointer[journal.WriteError]
	busy    bool
	obs     Observer
}

// Retry pauses of a failing batch.
const (
	retryFirst = 250 * time.Millisecond
	retryMax   = 5 * time.Second
)

func newWriter(j *journal.Journal, wake func()) *writer {
	return &writer{j: j, wake: wake, in: make(chan *journal.Batch), out: make(chan error, 1), quit: make(chan struct{})}
}

// run is owned by Interchange.Run, which closes in and waits for it.
func (w *writer) run() {
	for b := range w.in {
		start := time.Now()
		err := w.write(b)
		if w.obs != nil && err == nil {
			w.obs.JournalCommitted(time.Since(start), batchRows(b))
		}
		w.out <- err
		w.wake()
	}
	close(w.out)
}

// write commits b, retrying while the error may pass and quit is open.
func (w *writer) write(b *journal.Batch) error {
	pause := retryFirst
	for {
		err := w.j.Write(b)
		var we *journal.WriteError
		if err == nil || !errors.As(err, &we) || !we.Retryable {
			w.failing.Store(nil)
			return err
		}
		if w.failing.Swap(we) == nil {
			w.wake() // the loop starts refusing submissions now
		}
		select {
		case <-w.quit:
			return err
		case <-time.After(pause):
		}
		pause = min(2*pause, retryMax)
	}
}

func batchRows(b *journal.Batch) int {
	return len(b.Jobs) + len(b.Tasks) + len(b.Results) + len(b.Attempts) + len(b.Blocks) + len(b.Pools) + len(b.Events)
}

// close stops retrying, ends run and waits for it.
func (w *writer) close() {
	w.abort()
	close(w.in)
	for range w.out {
	}
}

// abort makes a batch being retried give up (loop exit).
func (w *writer) abort() {
	select {
	case <-w.quit:
	default:
		close(w.quit)
	}
}

// failure is the error of the batch being retried, nil when writes work.
func (w *writer) failure() *journal.WriteError {
	if w == nil {
		return nil
	}
	return w.failing.Load()
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

// reader runs the core's journal reads (results requests) on goroutines of
// its own, over the journal's read connections (WAL lets them read while
// the writer commits), so that a large read never stalls the loop. The
// loop queues requests without blocking (start) and collects the rows
// (collect); each answer wakes it.
type reader struct {
	j       *journal.Journal
	wake    func()
	in      chan readReq
	out     chan readDone
	waiting []readReq // not yet taken by a reading goroutine
	done    chan struct{}
	workers int
}

type readDone struct {
	q    readReq
	rows []journal.Row
	more bool
	err  error
}

// readWorkers is how many reads run at once.
const readWorkers = 2

func newReader(j *journal.Journal, wake func()) *reader {
	r := &reader{j: j, wake: wake, in: make(chan readReq, 16), out: make(chan readDone, 64), done: make(chan struct{}),
		workers: readWorkers}
	for range r.workers {
		go r.run()
	}
	return r
}

func (r *reader) run() {
	defer func() { r.done <- struct{}{} }()
	for q := range r.in {
		var d readDone
		if q.load { // the tasks after q.after, of every job
			var ts []journal.Task
			ts, d.err = r.j.TasksAfter(int64(q.after), q.limit+1)
			d.rows = make([]journal.Row, len(ts))
			for i := range ts {
				d.rows[i].Task = ts[i]
			}
		} else { // a page of results, cut by rows and bytes
			d.rows, d.more, d.err = r.j.RowsPage(int64(q.jobID), int64(q.after), q.limit, wire.BatchBytes)
		}
		d.q = q
		r.out <- d
		r.wake()
	}
}

// start queues reads; those the goroutines cannot take yet wait.
func (r *reader) start(qs []readReq) {
	r.waiting = append(r.waiting, qs...)
	for len(r.waiting) > 0 {
		select {
		case r.in <- r.waiting[0]:
			r.waiting[0] = readReq{}
			r.waiting = r.waiting[1:]
		default:
			return
		}
	}
}

// collect returns the reads finished so far.
func (r *reader) collect() []readDone {
	var out []readDone
	for {
		select {
		case d := <-r.out:
			out = append(out, d)
		default:
			return out
		}
	}
}

// close ends the goroutines once their current reads are done; the
// answers not collected are dropped (the loop is ending).
func (r *reader) close() {
	close(r.in)
	for n := r.workers; n > 0; {
		select {
		case <-r.done:
			n--
		case <-r.out:
		}
	}
}
