package interchange

import (
	"time"

	"github.com/htex/htex/wire"
)

// What the core does once a journal batch has committed: answer the
// clients, count finished tasks, acknowledge the pools' results.

func (s *state) applyPosts(posts []post) {
	for _, p := range posts {
		if p.ackSeq != 0 {
			if s.acks == nil {
				s.acks = map[string][]uint64{}
			}
			s.acks[p.ackPool] = append(s.acks[p.ackPool], p.ackSeq)
			s.ackCount++
			continue
		}
		if p.msg != nil {
			p.msg.RequestId = p.reqID
			s.toClient(p.reply, p.msg)
		}
		if d := p.done; d != nil {
			j := s.jobs[d.jobID]
			if j == nil {
				continue
			}
			if o := s.cfg.Observer; o != nil {
				var since time.Duration
				if d.submitted != 0 {
					since = s.now.Sub(time.Unix(0, d.submitted))
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
	if now.Sub(s.lastAcks) < ackEvery && s.ackCount < 1024 {
		return
	}
	s.lastAcks = now
	for _, id := range sortedKeys(s.acks) {
		seqs := s.acks[id]
		s.toPool([]byte(id), &wire.Envelope{Body: &wire.Envelope_ResultsAck{ResultsAck: &wire.ResultsAck{Seqs: seqs}}})
	}
	clear(s.acks)
	s.ackCount = 0
}
