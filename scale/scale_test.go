package scale

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// at is t0 plus s seconds.
func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func policy(kind string) Policy {
	return Policy{Kind: kind, InitBlocks: 1, MinBlocks: 1, MaxBlocks: 3, Parallelism: 1,
		MaxIdletime: 2 * time.Second, NodesPerBlock: 1}
}

// idle is a registered block with one slot whose pool has been idle since s.
func idle(id int64, s float64) Block {
	return Block{ID: id, Submitted: at(-100), Slots: 1, IdleSince: at(s)}
}

// busy is a registered block with one slot holding a task.
func busy(id int64) Block { return Block{ID: id, Submitted: at(-100), Slots: 1, Busy: 1} }

// pending is a block submitted at s whose pools have not registered.
func pending(id int64, s float64) Block { return Block{ID: id, Pending: true, Submitted: at(s)} }

func draining(b Block) Block { b.Draining = true; return b }

func TestDecide(t *testing.T) {
	with := func(p Policy, f func(*Policy)) Policy { f(&p); return p }
	cases := []struct {
		name       string
		p          Policy
		in         Input
		submit     int
		cancel     []int64
		wanted     int
		inSummary  string // a fragment the summary must hold
		outSummary string // a fragment it must not hold
	}{
		{name: "first decision submits init_blocks",
			p:      with(policy(Simple), func(p *Policy) { p.InitBlocks = 2 }),
			in:     Input{Now: at(0), First: true},
			submit: 2, wanted: 2},
		{name: "first decision counts adopted blocks",
			p:      with(policy(Simple), func(p *Policy) { p.InitBlocks = 2 }),
			in:     Input{Now: at(0), First: true, Blocks: []Block{idle(7, -1)}},
			submit: 1, wanted: 2},
		{name: "first decision ignores the queue",
			p:      policy(Simple),
			in:     Input{Now: at(0), First: true, Tasks: 500},
			submit: 1, wanted: 1},
		{name: "burst scales out to max_blocks",
			p:      policy(Simple),
			in:     Input{Now: at(0), Tasks: 200, SlotsPerBlock: 1, Blocks: []Block{busy(0)}},
			submit: 2, wanted: 3, inSummary: "tasks=200 slots/block=1 parallelism=1 live=1 draining=0 wanted=3 (min 1, max 3) submit=2"},
		{name: "burst with slots unknown assumes one per node",
			p:      with(policy(Simple), func(p *Policy) { p.MaxBlocks = 10; p.NodesPerBlock = 2 }),
			in:     Input{Now: at(0), Tasks: 9, Blocks: []Block{pending(0, -1)}},
			submit: 4, wanted: 5, inSummary: "slots/block=2"},
		{name: "slots per block divide the queue",
			p:      with(policy(Simple), func(p *Policy) { p.MaxBlocks = 10 }),
			in:     Input{Now: at(0), Tasks: 10, SlotsPerBlock: 4, Blocks: []Block{busy(0)}},
			submit: 2, wanted: 3},
		{name: "at max_blocks nothing more",
			p:      policy(Simple),
			in:     Input{Now: at(0), Tasks: 200, SlotsPerBlock: 1, Blocks: []Block{busy(0), busy(1), pending(2, -1)}},
			submit: 0, wanted: 3},
		{name: "parallelism 0.5 asks for half the blocks",
			p:      with(policy(Simple), func(p *Policy) { p.MaxBlocks = 4; p.Parallelism = 0.5 }),
			in:     Input{Now: at(0), Tasks: 4, SlotsPerBlock: 1, Blocks: []Block{busy(0)}},
			submit: 1, wanted: 2},
		{name: "parallelism 0.5 rounds up",
			p:      with(policy(Simple), func(p *Policy) { p.MaxBlocks = 10; p.Parallelism = 0.5 }),
			in:     Input{Now: at(0), Tasks: 7, SlotsPerBlock: 2, Blocks: []Block{busy(0)}},
			submit: 1, wanted: 2}, // ceil(7*0.5/2) = ceil(1.75)
		{name: "parallelism 0 still runs one block for waiting work",
			p:      with(policy(Simple), func(p *Policy) { p.MinBlocks = 0; p.Parallelism = 0 }),
			in:     Input{Now: at(0), Tasks: 50, SlotsPerBlock: 1},
			submit: 1, wanted: 1},
		{name: "parallelism 0 with a block: no more",
			p:      with(policy(Simple), func(p *Policy) { p.MinBlocks = 0; p.Parallelism = 0 }),
			in:     Input{Now: at(0), Tasks: 50, SlotsPerBlock: 1, Blocks: []Block{busy(0)}},
			submit: 0, wanted: 1},
		{name: "min_blocks kept with no work",
			p:      with(policy(Simple), func(p *Policy) { p.MinBlocks = 2 }),
			in:     Input{Now: at(0), Tasks: 0, NoWorkSince: at(-50)},
			submit: 2, wanted: 2},
		{name: "idle blocks wait for max_idletime",
			p:      policy(Simple),
			in:     Input{Now: at(0), NoWorkSince: at(-1.5), SlotsPerBlock: 1, Blocks: []Block{idle(0, -1.5), idle(1, -1.5), idle(2, -1.9)}},
			submit: 0, cancel: nil, wanted: 1, inSummary: "2 more idle, waiting for max_idletime 2s"},
		{name: "idle blocks cancelled after max_idletime, longest idle first, down to min_blocks",
			p:      policy(Simple),
			in:     Input{Now: at(0), NoWorkSince: at(-3), SlotsPerBlock: 1, Blocks: []Block{idle(0, -3), idle(1, -5), idle(2, -4)}},
			cancel: []int64{1, 2}, wanted: 1},
		{name: "only blocks idle long enough go",
			p:      with(policy(Simple), func(p *Policy) { p.MinBlocks = 0 }),
			in:     Input{Now: at(0), NoWorkSince: at(-3), SlotsPerBlock: 1, Blocks: []Block{idle(0, -3), idle(1, -1), idle(2, -2)}},
			cancel: []int64{0, 2}, wanted: 0, inSummary: "1 more idle"},
		{name: "never below min_blocks",
			p:      with(policy(Simple), func(p *Policy) { p.MinBlocks = 3 }),
			in:     Input{Now: at(0), NoWorkSince: at(-60), SlotsPerBlock: 1, Blocks: []Block{idle(0, -60), idle(1, -60), idle(2, -60)}},
			cancel: nil, wanted: 3},
		{name: "a block with a running task is never cancelled",
			p:      with(policy(Simple), func(p *Policy) { p.MinBlocks = 0 }),
			in:     Input{Now: at(0), NoWorkSince: at(-60), SlotsPerBlock: 1, Blocks: []Block{busy(0), idle(1, -60)}},
			cancel: []int64{1}, wanted: 0},
		{name: "a block with one busy pool of two is never cancelled",
			p: with(policy(HtexAutoScale), func(p *Policy) { p.MinBlocks = 0 }),
			in: Input{Now: at(0), Tasks: 1, SlotsPerBlock: 2, Blocks: []Block{
				{ID: 0, Submitted: at(-100), Slots: 2, Busy: 1}, // IdleSince zero: a pool is busy
				{ID: 1, Submitted: at(-100), Slots: 2, IdleSince: at(-60)}}},
			cancel: []int64{1}, wanted: 1},
		{name: "a busy count wins over a stale idle time",
			p:      with(policy(Simple), func(p *Policy) { p.MinBlocks = 0 }),
			in:     Input{Now: at(0), NoWorkSince: at(-60), SlotsPerBlock: 1, Blocks: []Block{{ID: 0, Slots: 1, Busy: 1, IdleSince: at(-60)}}},
			cancel: nil, wanted: 0},
		{name: "simple keeps idle blocks while work remains",
			p:      policy(Simple),
			in:     Input{Now: at(0), Tasks: 1, SlotsPerBlock: 1, Blocks: []Block{busy(0), idle(1, -60), idle(2, -60)}},
			cancel: nil, wanted: 1},
		{name: "htex_auto_scale cancels surplus idle blocks while work remains",
			p:      policy(HtexAutoScale),
			in:     Input{Now: at(0), Tasks: 1, SlotsPerBlock: 1, Blocks: []Block{busy(0), idle(1, -60), idle(2, -3)}},
			cancel: []int64{1, 2}, wanted: 1},
		{name: "htex_auto_scale keeps as many as the work wants",
			p:      policy(HtexAutoScale),
			in:     Input{Now: at(0), Tasks: 2, SlotsPerBlock: 1, Blocks: []Block{busy(0), idle(1, -60), idle(2, -30)}},
			cancel: []int64{1}, wanted: 2},
		{name: "htex_auto_scale waits for max_idletime",
			p:      policy(HtexAutoScale),
			in:     Input{Now: at(0), Tasks: 1, SlotsPerBlock: 1, Blocks: []Block{busy(0), idle(1, -1)}},
			cancel: nil, wanted: 1, inSummary: "1 more idle"},
		{name: "pending block with no work waits until the work has been gone max_idletime",
			p:      with(policy(Simple), func(p *Policy) { p.MinBlocks = 0 }),
			in:     Input{Now: at(0), NoWorkSince: at(-1), Blocks: []Block{pending(4, -30)}},
			cancel: nil, wanted: 0},
		{name: "pending block with no work cancelled after max_idletime",
			p:      with(policy(Simple), func(p *Policy) { p.MinBlocks = 0 }),
			in:     Input{Now: at(0), NoWorkSince: at(-2), Blocks: []Block{pending(4, -30)}},
			cancel: []int64{4}, wanted: 0},
		{name: "init block is not cancelled before max_idletime from its submission",
			p:      with(policy(Simple), func(p *Policy) { p.MinBlocks = 0 }),
			in:     Input{Now: at(0), NoWorkSince: at(-60), Blocks: []Block{pending(0, -1)}},
			cancel: nil, wanted: 0},
		{name: "pending blocks go before idle ones, newest first",
			p:      with(policy(Simple), func(p *Policy) { p.MinBlocks = 1 }),
			in:     Input{Now: at(0), NoWorkSince: at(-10), SlotsPerBlock: 1, Blocks: []Block{idle(0, -60), pending(1, -50), pending(2, -40)}},
			cancel: []int64{2, 1}, wanted: 1},
		{name: "htex_auto_scale cancels a surplus pending block submitted long ago",
			p:      policy(HtexAutoScale),
			in:     Input{Now: at(0), Tasks: 1, SlotsPerBlock: 1, Blocks: []Block{busy(0), pending(1, -30)}},
			cancel: []int64{1}, wanted: 1},
		{name: "htex_auto_scale keeps a surplus pending block submitted just now",
			p:      policy(HtexAutoScale),
			in:     Input{Now: at(0), Tasks: 1, SlotsPerBlock: 1, Blocks: []Block{busy(0), pending(1, -1)}},
			cancel: nil, wanted: 1},
		{name: "draining blocks are not live: a replacement is submitted",
			p:      with(policy(Simple), func(p *Policy) { p.MaxBlocks = 1 }),
			in:     Input{Now: at(0), Tasks: 5, SlotsPerBlock: 1, Blocks: []Block{draining(busy(0))}},
			submit: 1, wanted: 1, inSummary: "live=0 draining=1"},
		{name: "a draining block is never cancelled",
			p:      with(policy(Simple), func(p *Policy) { p.MinBlocks = 0 }),
			in:     Input{Now: at(0), NoWorkSince: at(-60), Blocks: []Block{draining(idle(0, -60))}},
			cancel: nil, wanted: 0},
		{name: "min_blocks replaces a draining block with no work",
			p:      policy(Simple),
			in:     Input{Now: at(0), NoWorkSince: at(-60), Blocks: []Block{draining(idle(0, -60))}},
			submit: 1, wanted: 1},
		{name: "strategy none never scales out",
			p:      policy(None),
			in:     Input{Now: at(0), Tasks: 200, SlotsPerBlock: 1, Blocks: []Block{busy(0)}},
			submit: 0, wanted: 1},
		{name: "strategy none never scales in",
			p:      with(policy(None), func(p *Policy) { p.MinBlocks = 0; p.InitBlocks = 3 }),
			in:     Input{Now: at(0), NoWorkSince: at(-600), Blocks: []Block{idle(0, -600), idle(1, -600), pending(2, -600)}},
			cancel: nil, wanted: 3},
		{name: "strategy none does not replace ended blocks",
			p:      policy(None),
			in:     Input{Now: at(0), Tasks: 10},
			submit: 0, wanted: 0},
		{name: "strategy none submits init_blocks first",
			p:      with(policy(None), func(p *Policy) { p.InitBlocks = 2; p.MaxBlocks = 2 }),
			in:     Input{Now: at(0), First: true, Tasks: 10},
			submit: 2, wanted: 2},
		{name: "halted submits nothing",
			p:      policy(Simple),
			in:     Input{Now: at(0), Tasks: 200, SlotsPerBlock: 1, Halted: true},
			submit: 0, wanted: 3, inSummary: "[halted: too many failed blocks"},
		{name: "halted still scales in",
			p:      with(policy(Simple), func(p *Policy) { p.MinBlocks = 0 }),
			in:     Input{Now: at(0), NoWorkSince: at(-60), SlotsPerBlock: 1, Halted: true, Blocks: []Block{idle(0, -60)}},
			cancel: []int64{0}, wanted: 0},
		{name: "no waiting note when nothing is surplus",
			p:      policy(Simple),
			in:     Input{Now: at(0), Tasks: 3, SlotsPerBlock: 1, Blocks: []Block{busy(0), busy(1), idle(2, -1)}},
			wanted: 3, outSummary: "waiting"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(c.p, c.in)
			if d.Submit != c.submit || !slices.Equal(d.Cancel, c.cancel) || d.Wanted != c.wanted {
				t.Errorf("got submit=%d cancel=%v wanted=%d, want submit=%d cancel=%v wanted=%d\nsummary: %s",
					d.Submit, d.Cancel, d.Wanted, c.submit, c.cancel, c.wanted, d.Summary)
			}
			if c.inSummary != "" && !strings.Contains(d.Summary, c.inSummary) {
				t.Errorf("summary %q lacks %q", d.Summary, c.inSummary)
			}
			if c.outSummary != "" && strings.Contains(d.Summary, c.outSummary) {
				t.Errorf("summary %q holds %q", d.Summary, c.outSummary)
			}
			if !strings.HasPrefix(d.Summary, c.p.Kind+": ") {
				t.Errorf("summary %q does not start with the strategy", d.Summary)
			}
		})
	}
}

// TestDecideInvariants checks, over a grid of observations, what no
// decision may ever do: cancel a busy, draining or unknown block, go below
// min_blocks, submit beyond max_blocks or while halted, or act under none.
func TestDecideInvariants(t *testing.T) {
	shapes := [][]Block{
		nil,
		{busy(0)},
		{idle(0, -60)},
		{pending(0, -60)},
		{busy(0), idle(1, -60), idle(2, -1)},
		{pending(0, -60), idle(1, -60), busy(2)},
		{draining(busy(0)), idle(1, -60)},
		{draining(idle(0, -60)), pending(1, -1), idle(2, -5), idle(3, -60)},
	}
	for _, kind := range []string{None, Simple, HtexAutoScale} {
		for _, minB := range []int{0, 1, 2} {
			for _, par := range []float64{0, 0.5, 1} {
				for _, tasks := range []int{0, 1, 3, 200} {
					for _, halted := range []bool{false, true} {
						for si, blocks := range shapes {
							p := Policy{Kind: kind, InitBlocks: minB, MinBlocks: minB, MaxBlocks: 3, Parallelism: par,
								MaxIdletime: 2 * time.Second, NodesPerBlock: 1}
							in := Input{Now: at(0), Tasks: tasks, NoWorkSince: at(-30), Blocks: blocks, SlotsPerBlock: 1, Halted: halted}
							d := Decide(p, in)
							live := 0
							byID := map[int64]Block{}
							for _, b := range blocks {
								byID[b.ID] = b
								if !b.Draining {
									live++
								}
							}
							where := func() string {
								return kind + " shape " + string(rune('0'+si)) + ": " + d.Summary
							}
							for _, id := range d.Cancel {
								b, ok := byID[id]
								if !ok || b.Busy > 0 || b.Draining || (!b.Pending && b.IdleSince.IsZero()) {
									t.Errorf("cancelled block %d (%+v): %s", id, b, where())
								}
								since := b.IdleSince
								if b.Pending {
									since = b.Submitted
									if tasks == 0 && in.NoWorkSince.After(since) {
										since = in.NoWorkSince
									}
								}
								if in.Now.Sub(since) < p.MaxIdletime {
									t.Errorf("cancelled block %d idle only %s: %s", id, in.Now.Sub(since), where())
								}
							}
							if len(d.Cancel) > 0 && live-len(d.Cancel) < minB {
								t.Errorf("cancelled below min_blocks: %s", where())
							}
							if d.Submit > 0 && live+d.Submit > p.MaxBlocks {
								t.Errorf("submitted beyond max_blocks: %s", where())
							}
							if halted && d.Submit > 0 {
								t.Errorf("submitted while halted: %s", where())
							}
							if kind == None && (d.Submit > 0 || len(d.Cancel) > 0) {
								t.Errorf("strategy none acted: %s", where())
							}
							if d.Submit > 0 && len(d.Cancel) > 0 {
								t.Errorf("submitted and cancelled at once: %s", where())
							}
							if kind == Simple && tasks > 0 && len(d.Cancel) > 0 {
								t.Errorf("simple scaled in while work remains: %s", where())
							}
						}
					}
				}
			}
		}
	}
}

func TestWanted(t *testing.T) {
	p := Policy{MinBlocks: 1, MaxBlocks: 100, Parallelism: 1}
	for _, c := range []struct {
		tasks, spb int
		par        float64
		want       int
	}{
		{0, 1, 1, 1}, {1, 1, 1, 1}, {200, 1, 1, 100}, {200, 4, 1, 50}, {201, 4, 1, 51},
		{200, 4, 0.5, 25}, {3, 4, 0.5, 1}, {10, 0, 1, 10}, {10, 1, 0, 1}, {10, 1, 0.01, 1}, {1000, 1, 0.01, 10},
	} {
		q := p
		q.Parallelism = c.par
		if got := Wanted(q, c.tasks, c.spb); got != c.want {
			t.Errorf("Wanted(tasks %d, slots/block %d, parallelism %g) = %d, want %d", c.tasks, c.spb, c.par, got, c.want)
		}
	}
}
