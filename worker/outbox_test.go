package worker

import (
	"slices"
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
		m := o.add([]*wire.Result{{TaskId: uint64(10 + i)}}, t0.Add(time.Duration(i)*time.Second))
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
