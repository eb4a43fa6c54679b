package worker

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/htex/htex/wire"
)

func outboxSeqs(ms []*wire.Results) []uint64 {
	var out []uint64
	for _, m := range ms {
		out = append(out, m.Seq)
	}
	return out
}

func TestOutboxKeepsUntilAcknowledged(t *testing.T) {
	t0 := time.Unix(1000, 0)
	o := newOutbox()
	for i := range 5 {
		ms := o.add([]*wire.Result{{TaskId: uint64(10 + i)}}, t0.Add(time.Duration(i)*time.Second))
		if len(ms) != 1 {
			t.Fatalf("one result in %d messages", len(ms))
		}
		m := ms[0]
		if m.Seq != uint64(i+1) {
			t.Fatalf("message %d numbered %d, want %d", i, m.Seq, i+1)
		}
	}
	// Acknowledgements may come in any order, with numbers it never had.
	o.ack([]uint64{4, 2, 99})
	if o.len() != 3 {
		t.Fatalf("%d unacknowledged, want 3", o.len())
	}
	// Messages 1 and 3 have waited more than 2 s at t0+4.5s; 5 has not.
	if got := outboxSeqs(o.due(t0.Add(4500*time.Millisecond), 2*time.Second)); !slices.Equal(got, []uint64{1, 3}) {
		t.Errorf("due: %v, want [1 3]", got)
	}
	// Sending again restarts their wait.
	if got := outboxSeqs(o.due(t0.Add(5*time.Second), 2*time.Second)); len(got) != 0 {
		t.Errorf("due right after a resend: %v, want none", got)
	}
	fit, rest := o.unacked(t0.Add(6*time.Second), 1<<20)
	if !slices.Equal(outboxSeqs(fit), []uint64{1, 3, 5}) || len(rest) != 0 {
		t.Errorf("unacked: fit %v rest %v, want [1 3 5] and none", outboxSeqs(fit), outboxSeqs(rest))
	}
	o.ack([]uint64{1, 3, 5})
	if o.len() != 0 {
		t.Errorf("%d left after every acknowledgement", o.len())
	}
}

func TestOutboxUnackedSplitsAtSize(t *testing.T) {
	o := newOutbox()
	now := time.Unix(1000, 0)
	big := make([]byte, 1000)
	for i := range 4 {
		o.add([]*wire.Result{{TaskId: uint64(i), Stdout: big}}, now)
	}
	one := proto.Size(&wire.Results{Results: []*wire.Result{{TaskId: 1, Stdout: big}}, Seq: 1})
	fit, rest := o.unacked(now, 2*one+one/2)
	if !slices.Equal(outboxSeqs(fit), []uint64{1, 2}) || !slices.Equal(outboxSeqs(rest), []uint64{3, 4}) {
		t.Errorf("fit %v rest %v, want [1 2] and [3 4]", outboxSeqs(fit), outboxSeqs(rest))
	}
}

// TestOutboxAddBoundsMessages: the results of 80 slots with 1 MiB tails
// each (160 MiB) go out in messages that each fit wire.BatchBytes, every
// result once, numbered in order.
func TestOutboxAddBoundsMessages(t *testing.T) {
	o := newOutbox()
	tail := make([]byte, 1<<20)
	var rs []*wire.Result
	for i := range 80 {
		rs = append(rs, &wire.Result{TaskId: uint64(i + 1), Stdout: tail, Stderr: tail})
	}
	ms := o.add(rs, time.Unix(1000, 0))
	next := uint64(1)
	for i, m := range ms {
		if m.Seq != uint64(i+1) {
			t.Fatalf("message %d numbered %d", i, m.Seq)
		}
		b, err := wire.Encode(&wire.Envelope{Body: &wire.Envelope_Results{Results: m}})
		if err != nil || len(b) > wire.BatchBytes+16 {
			t.Fatalf("message %d: %d bytes, err %v", i, len(b), err)
		}
		for _, r := range m.Results {
			if r.TaskId != next {
				t.Fatalf("result %d where %d was due", r.TaskId, next)
			}
			next++
		}
	}
	if next != 81 || o.len() != len(ms) || len(ms) < 10 {
		t.Fatalf("%d results in %d messages (%d kept)", next-1, len(ms), o.len())
	}
}

func TestBoundResult(t *testing.T) {
	huge := make([]byte, wire.MaxTailBytes+10)
	huge[len(huge)-1] = 'z'
	r := &wire.Result{Stdout: huge, Stderr: []byte("small"), Error: strings.Repeat("e", wire.MaxErrorBytes+1)}
	bad := &wire.Result{Error: "start caf\xe9: no such file"}
	boundResult(bad)
	if bad.Error != "start caf\uFFFD: no such file" {
		t.Errorf("error %q: want U+FFFD for the byte that is not UTF-8", bad.Error)
	}
	boundResult(r)
	if len(r.Stdout) != wire.MaxTailBytes || r.Stdout[len(r.Stdout)-1] != 'z' {
		t.Errorf("stdout: %d bytes, want the last %d", len(r.Stdout), wire.MaxTailBytes)
	}
	if string(r.Stderr) != "small" || len(r.Error) != wire.MaxErrorBytes {
		t.Errorf("stderr %q, error of %d bytes", r.Stderr, len(r.Error))
	}
}
