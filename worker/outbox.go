package worker

import (
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/htex/htex/wire"
)

// outbox keeps the Results messages a pool has sent until the interchange
// acknowledges them, which it does once they are in its journal. A message
// lost on the way (the daemon killed before its journal commit, a broken
// connection) is sent again: with the registration that follows a daemon
// restart, or when it has waited too long. The interchange ignores results
// it already has, so sending one twice is harmless; losing one would run
// its task a second time. Owned by the pool's loop goroutine.
type outbox struct {
	seq  uint64
	sent map[uint64]*sentResults
}

type sentResults struct {
	msg *wire.Results
	at  time.Time // last sent
}

func newOutbox() *outbox { return &outbox{sent: map[uint64]*sentResults{}} }

// add cuts a batch of results into messages of at most wire.BatchBytes,
// numbers them and keeps them until acknowledged.
func (o *outbox) add(rs []*wire.Result, now time.Time) []*wire.Results {
	for _, r := range rs {
		boundResult(r)
	}
	var out []*wire.Results
	start := 0
	for _, end := range wire.Cut(len(rs), func(i int) int { return wire.FieldSize(proto.Size(rs[i])) }, 0, wire.BatchBytes) {
		o.seq++
		m := &wire.Results{Results: rs[start:end], Seq: o.seq}
		o.sent[o.seq] = &sentResults{msg: m, at: now}
		out = append(out, m)
		start = end
	}
	return out
}

// ack forgets acknowledged messages; unknown numbers are ignored.
func (o *outbox) ack(seqs []uint64) {
	for _, s := range seqs {
		delete(o.sent, s)
	}
}

// len is the number of unacknowledged messages.
func (o *outbox) len() int { return len(o.sent) }

// unacked returns every unacknowledged message in the order sent, split at
// maxBytes: those that fit go into a registration, the rest must be sent
// on their own (before it). Both count as sent now.
func (o *outbox) unacked(now time.Time, maxBytes int) (fit, rest []*wire.Results) {
	size := 0
	for _, m := range o.inOrder() {
		m.at = now
		if n := proto.Size(m.msg); size+n <= maxBytes {
			size += n
			fit = append(fit, m.msg)
		} else {
			rest = append(rest, m.msg)
		}
	}
	return fit, rest
}

// due returns the messages sent more than wait ago without an
// acknowledgement, in the order sent, and counts them as sent now.
func (o *outbox) due(now time.Time, wait time.Duration) []*wire.Results {
	var out []*wire.Results
	for _, m := range o.inOrder() {
		if now.Sub(m.at) > wait {
			m.at = now
			out = append(out, m.msg)
		}
	}
	return out
}

func (o *outbox) inOrder() []*sentResults {
	out := make([]*sentResults, 0, len(o.sent))
	for _, m := range o.sent {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *sentResults) int {
		switch {
		case a.msg.Seq < b.msg.Seq:
			return -1
		case a.msg.Seq > b.msg.Seq:
			return 1
		}
		return 0
	})
	return out
}

// boundResult keeps a result within the limits of wire/limits.go, so that
// it always fits in a message and encodes: the last wire.MaxTailBytes of each output
// (the pool's own tails are output_tail_bytes, checked to be smaller) and
// the first wire.MaxErrorBytes of the error text.
func boundResult(r *wire.Result) {
	if n := len(r.Stdout); n > wire.MaxTailBytes {
		r.Stdout = r.Stdout[n-wire.MaxTailBytes:]
	}
	if n := len(r.Stderr); n > wire.MaxTailBytes {
		r.Stderr = r.Stderr[n-wire.MaxTailBytes:]
	}
	// an error may quote a file name that is not UTF-8: show it with U+FFFD
	r.Error = wire.Clip(strings.ToValidUTF8(r.Error, "\uFFFD"), wire.MaxErrorBytes)
}
