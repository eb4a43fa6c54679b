package interchange

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/htex/htex/journal"
	"github.com/htex/htex/wire"
)

// TestDispatchKeepsPoolsFed drives a core with many pools through random
// registrations, results, drains, losses and submissions, with most queued
// tasks spilled (spill.go) and loaded from a model journal, and checks
// after every step that dispatch left no pool wanting tasks while tasks
// wait, that every pool wanting tasks is in the ready ring, that the
// count of spilled tasks is right and that each pool was sent what the
// core thinks it runs.
func TestDispatchKeepsPoolsFed(t *testing.T) {
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 3))
		s := newState(config{HeartbeatThreshold: time.Hour, KeepLoaded: 8, LoadBatch: 3},
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		now := t0
		s.at(now)
		held := map[string][]uint64{}
		journaled := map[int64]journal.Task{}
		var ids []string
		for step := range 300 {
			now = now.Add(time.Millisecond)
			switch op := rng.IntN(10); {
			case op < 2 || len(ids) == 0: // a pool registers
				id := fmt.Sprintf("p%d", len(ids))
				ids = append(ids, id)
				s.poolMsg(now, []byte(id), enc(&wire.Envelope{Body: &wire.Envelope_Register{Register: &wire.Register{
					PoolId: id, Slots: int32(1 + rng.IntN(4)), Prefetch: int32(rng.IntN(5))}}}))
			case op < 4: // a submission
				r := &wire.SubmitRequest{Last: true}
				for range 1 + rng.IntN(20) {
					r.Tasks = append(r.Tasks, &wire.TaskSpec{Argv: []string{"x"}, Priority: int32(rng.IntN(3)), Retries: 1})
				}
				s.clientMsg(now, []byte("c"), enc(&wire.Envelope{Body: &wire.Envelope_Submit{Submit: r}}))
			case op < 8: // a pool reports some of its tasks
				id := ids[rng.IntN(len(ids))]
				n := rng.IntN(len(held[id]) + 1)
				m := &wire.Results{}
				for _, tid := range held[id][:n] {
					m.Results = append(m.Results, &wire.Result{TaskId: tid})
				}
				held[id] = held[id][n:]
				s.poolMsg(now, []byte(id), enc(&wire.Envelope{Body: &wire.Envelope_Results{Results: m}}))
			case op < 9: // a pool drains
				s.poolMsg(now, []byte(ids[rng.IntN(len(ids))]), enc(&wire.Envelope{Body: &wire.Envelope_DrainNotice{DrainNotice: &wire.DrainNotice{}}}))
			default: // a pool leaves
				id := ids[rng.IntN(len(ids))]
				held[id] = nil
				s.poolMsg(now, []byte(id), enc(&wire.Envelope{Body: &wire.Envelope_Shutdown{Shutdown: &wire.Shutdown{Reason: "test"}}}))
			}
			for range 1000 { // turns, answering loads, until none is wanted
				s.turn(now)
				for _, m := range s.takeOut() {
					if tk, ok := msgOf(m).Body.(*wire.Envelope_Tasks); ok {
						for _, x := range tk.Tasks.Tasks {
							held[string(m.id)] = append(held[string(m.id)], x.Id)
						}
					}
				}
				if b := s.takeBatch(); b != nil {
					for _, jt := range b.Tasks {
						journaled[jt.ID] = jt
					}
				}
				s.committed(now, nil)
				reads := s.takeReads()
				if len(reads) == 0 && !s.loadWanted {
					break
				}
				for _, q := range reads {
					var rows []journal.Row
					for id := int64(q.after) + 1; len(rows) <= q.limit; id++ {
						jt, ok := journaled[id]
						if !ok {
							break
						}
						rows = append(rows, journal.Row{Task: jt})
					}
					s.rowsRead(now, q, rows, false, nil)
				}
			}
			spilled := 0
			s.tasks.each(func(tk *task) {
				if tk.state == stQueued && !tk.fields().loaded() {
					spilled++
				}
			})
			if spilled != s.spilled {
				t.Fatalf("seed %d step %d: %d queued tasks are spilled, the core counts %d", seed, step, spilled, s.spilled)
			}
			queued := false
			s.tasks.each(func(tk *task) { queued = queued || tk.state == stQueued })
			for _, id := range sortedKeys(s.pools) {
				p := s.pools[id]
				if len(p.running) > p.capacity {
					t.Fatalf("seed %d step %d: pool %s runs %d tasks, capacity %d", seed, step, id, len(p.running), p.capacity)
				}
				if s.wants(p) && queued {
					t.Fatalf("seed %d step %d: pool %s wants tasks while tasks are queued", seed, step, id)
				}
				if s.wants(p) && !p.inReady {
					t.Fatalf("seed %d step %d: pool %s wants tasks but is not in the ready ring", seed, step, id)
				}
				got := slices.Sorted(func(yield func(uint64) bool) {
					for tid := range p.running {
						if !yield(tid) {
							return
						}
					}
				})
				want := slices.Clone(held[id])
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("seed %d step %d: pool %s: core says it runs %v, it was sent %v", seed, step, id, got, want)
				}
			}
		}
	}
}

// TestDispatchRotates checks that pools take turns: with work for one pool
// at a time, each of ten idle pools gets the same share.
func TestDispatchRotates(t *testing.T) {
	s := newState(config{HeartbeatThreshold: time.Hour}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for i := range 10 {
		id := fmt.Sprintf("p%d", i)
		s.poolMsg(t0, []byte(id), enc(&wire.Envelope{Body: &wire.Envelope_Register{Register: &wire.Register{
			PoolId: id, Slots: 1000}}}))
	}
	got := map[string]int{}
	for range 100 {
		r := &wire.SubmitRequest{Last: true}
		for range 3 {
			r.Tasks = append(r.Tasks, &wire.TaskSpec{Argv: []string{"x"}})
		}
		s.clientMsg(t0, []byte("c"), enc(&wire.Envelope{Body: &wire.Envelope_Submit{Submit: r}}))
		s.turn(t0)
		for _, m := range s.takeOut() {
			if tk, ok := msgOf(m).Body.(*wire.Envelope_Tasks); ok {
				got[string(m.id)] += len(tk.Tasks.Tasks)
			}
		}
	}
	for i := range 10 {
		if n := got[fmt.Sprintf("p%d", i)]; n != 30 {
			t.Errorf("pool p%d got %d tasks, want 30 (each pool in turn): %v", i, n, got)
		}
	}
}
