package interchange

import (
	"errors"
	"fmt"
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
	posts   []post // after-commit work of the batch in flight
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

// sendJournal hands the pending batch to the writer when it is idle.
func (s *state) sendJournal() {
	w := s.writer
	if w.busy || (s.pending.Empty() && len(s.posts) == 0) {
		return
	}
	w.busy = true
	w.posts = s.posts
	b := s.pending
	s.pending, s.posts = &journal.Batch{}, nil
	w.in <- b
}

// collectCommits applies the after-commit work of a finished batch.
func (s *state) collectCommits() error {
	w := s.writer
	if !w.busy {
		return nil
	}
	if e := w.failure(); e != nil && s.journalErr == nil {
		s.journalErr = e
		s.log.Error("journal write failed: refusing submissions and holding results until it succeeds", "err", e)
	}
	select {
	case err := <-w.out:
		w.busy = false
		if err != nil {
			return fmt.Errorf("journal write failed, stopping to lose nothing: %w", err)
		}
		if s.journalErr != nil {
			s.log.Info("journal writes work again: accepting submissions", "journal", s.ix.opt.Journal.Path())
			s.journalErr = nil
		}
		s.applyPosts(w.posts)
		w.posts = nil
	default:
	}
	return nil
}

// flushJournalSync writes what is pending before the loop exits.
func (s *state) flushJournalSync() {
	w := s.writer
	w.abort()
	if w.busy {
		if err := <-w.out; err == nil {
			s.applyPosts(w.posts)
		}
		w.busy = false
	}
	if !s.pending.Empty() {
		if err := s.ix.opt.Journal.Write(s.pending); err != nil {
			s.log.Error("final journal write failed", "err", err)
		}
	}
}

func (s *state) applyPosts(posts []post) {
	for _, p := range posts {
		if p.ackSeq != 0 {
			if s.acks == nil {
				s.acks = map[string][]uint64{}
			}
			s.acks[p.ackPool] = append(s.acks[p.ackPool], p.ackSeq)
			continue
		}
		if p.msg != nil {
			s.reply(p.reply, p.reqID, p.msg)
		}
		if d := p.done; d != nil {
			j := s.jobs[d.jobID]
			if j == nil {
				continue
			}
			if o := s.ix.opt.Observer; o != nil {
				var since time.Duration
				if !d.submitted.IsZero() {
					since = s.now.Sub(d.submitted)
				}
				o.TaskFinished(d.state, d.kind, since)
			}
			switch d.state {
			case "succeeded":
				j.succeeded++
			case "cancelled":
				j.cancelled++
			default:
				j.failed++
			}
			s.jobsDirty[j.id] = true
			for _, w := range j.watchers {
				if w.wantResults {
					w.done = append(w.done, &wire.Done{TaskId: d.taskID, Ok: d.state == "succeeded", EndUnixUs: d.end.UnixMicro()})
				}
			}
		}
	}
}

// ackEvery is how often acknowledgements of committed results go out. A
// pool needs them only to forget results it keeps for a resend, so one
// message per pool now and then does, instead of one per Results message.
const ackEvery = 50 * time.Millisecond

// flushAcks sends the pending acknowledgements, one message per pool, at
// most every ackEvery (or when many are pending).
func (s *state) flushAcks(now time.Time) {
	if len(s.acks) == 0 {
		return
	}
	if now.Sub(s.lastAcks) < ackEvery {
		n := 0
		for _, seqs := range s.acks {
			n += len(seqs)
		}
		if n < 1024 {
			return
		}
	}
	s.lastAcks = now
	for id, seqs := range s.acks {
		s.ix.send(s.ix.workerSock, []byte(id), &wire.Envelope{Body: &wire.Envelope_ResultsAck{ResultsAck: &wire.ResultsAck{Seqs: seqs}}})
	}
	clear(s.acks)
}
