package interchange

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/htex/htex/wire"
)

// BenchmarkDispatch measures one step of a busy core: a pool reports 4
// results and the turn that follows refills it, with every other pool
// full. Its cost should not grow with the number of pools.
func BenchmarkDispatch(b *testing.B) {
	for _, pools := range []int{1, 10, 100, 1000} {
		b.Run("pools="+strconv.Itoa(pools), func(b *testing.B) { benchDispatch(b, pools, 64) })
	}
}

func benchDispatch(b *testing.B, pools, slots int) {
	s := newState(config{HeartbeatThreshold: time.Hour}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	now := t0
	s.at(now)
	ids := make([][]byte, pools)
	for i := range pools {
		ids[i] = []byte(fmt.Sprintf("pool-%04d", i))
		s.poolMsg(now, ids[i], enc(&wire.Envelope{Body: &wire.Envelope_Register{Register: &wire.Register{
			PoolId: string(ids[i]), Slots: int32(slots), BlockId: int64(i)}}}))
	}
	spec := &wire.TaskSpec{Argv: []string{"true"}, Noop: true, Retries: -1, ArrayIndex: -1}
	submit := func(n int) {
		r := &wire.SubmitRequest{Tasks: make([]*wire.TaskSpec, n), Last: true}
		for i := range r.Tasks {
			r.Tasks[i] = spec
		}
		s.clientMsg(now, []byte("c"), enc(&wire.Envelope{Body: &wire.Envelope_Submit{Submit: r}}))
		s.takeBatch()
		s.committed(now, nil)
	}
	const perMsg = 4
	submit(pools*slots + 8192)
	s.turn(now)
	// what each pool runs, oldest first, from the Tasks messages
	held := make([][]uint64, pools)
	index := map[string]int{}
	for i, id := range ids {
		index[string(id)] = i
	}
	collect := func() {
		for _, m := range s.takeOut() {
			if t, ok := msgOf(m).Body.(*wire.Envelope_Tasks); ok {
				i := index[string(m.id)]
				for _, x := range t.Tasks.Tasks {
					held[i] = append(held[i], x.Id)
				}
			}
		}
	}
	collect()
	seq := uint64(0)
	b.ReportAllocs()
	b.ResetTimer()
	for op := range b.N {
		if s.queue.Len() < 4096 {
			b.StopTimer()
			submit(8192)
			b.StartTimer()
		}
		i := op % pools
		if len(held[i]) < perMsg {
			b.Fatalf("pool %d holds %d tasks", i, len(held[i]))
		}
		seq++
		m := &wire.Results{Seq: seq}
		for _, id := range held[i][:perMsg] {
			m.Results = append(m.Results, &wire.Result{TaskId: id, EndUnixUs: 1})
		}
		held[i] = held[i][perMsg:]
		now = now.Add(time.Microsecond)
		s.poolMsg(now, ids[i], enc(&wire.Envelope{Body: &wire.Envelope_Results{Results: m}}))
		s.turn(now)
		collect()
		if op%64 == 0 {
			s.takeBatch()
			s.committed(now, nil)
		}
	}
}
