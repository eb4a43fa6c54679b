package worker

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/htex/htex/launcher"
	"github.com/htex/htex/wire"
)

var loopT0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return loopT0.Add(time.Duration(ms) * time.Millisecond) }

func testLoop() *loop {
	return newLoop(Options{Heartbeat: 10 * time.Second, Threshold: 60 * time.Second, DrainPeriod: 30 * time.Second}, loopT0)
}

// ended is a result of task id that ended at ms with kind (and exit 1
// unless it is a success).
func ended(id uint64, ms int, kind wire.ErrorKind) *wire.Result {
	r := &wire.Result{TaskId: id, EndUnixUs: at(ms).UnixMicro(), ErrorKind: kind}
	if kind != wire.ErrorKind_NONE {
		r.ExitCode = 1
	}
	return r
}

func ids(rs []*wire.Result) []uint64 {
	var out []uint64
	for _, r := range rs {
		out = append(out, r.TaskId)
	}
	return out
}

func TestPollTimeout(t *testing.T) {
	cases := []struct {
		name  string
		setup func(l *loop)
		now   int // ms
		want  time.Duration
	}{
		{"idle: the next heartbeat", func(l *loop) {}, 0, 10 * time.Second},
		{"heartbeat overdue: do not wait", func(l *loop) {}, 12_000, 0},
		{"held result: its signal grace", func(l *loop) { l.withheld = []*wire.Result{ended(1, 100, wire.ErrorKind_EXIT)} }, 400, 700 * time.Millisecond},
		{"coalescing: its end, rounded up to a whole ms", func(l *loop) { l.holdTill = at(2).Add(500 * time.Microsecond) }, 0, 3 * time.Millisecond},
		{"draining: quick rounds", func(l *loop) { l.draining = true }, 0, 200 * time.Millisecond},
		{"block end: wake as the drain period starts", func(l *loop) { l.blockEnd = at(35_000) }, 0, 5*time.Second + time.Millisecond},
		{"block end far: the heartbeat first", func(l *loop) { l.blockEnd = at(3_600_000) }, 0, 10 * time.Second},
		{"draining ignores the block end", func(l *loop) { l.blockEnd = at(30_000); l.draining = true }, 0, 200 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := testLoop()
			c.setup(l)
			if got := l.pollTimeout(at(c.now)); got != c.want {
				t.Errorf("pollTimeout = %v, want %v", got, c.want)
			}
		})
	}
}

func TestAdmit(t *testing.T) {
	mpiTask := func(id uint64) *wire.Task {
		return &wire.Task{Id: id, Argv: []string{"./app"}, MpiNodes: []string{"n1", "n2"}, RanksPerNode: 2}
	}
	cases := []struct {
		name      string
		launcher  string
		task      *wire.Task
		wantPlace bool
		wantErr   string // the immediate result's error; "" = success or none
		wantBatch bool
	}{
		{"a command is placed and held", "", &wire.Task{Id: 1, Argv: []string{"true"}}, true, "", false},
		{"empty argv is answered at once", "", &wire.Task{Id: 2}, false, "empty argv", true},
		{"noop succeeds at once", "", &wire.Task{Id: 3, Noop: true}, false, "", true},
		{"MPI task without a launcher", "", mpiTask(4), false, "cannot start the ranks of a task on 2 nodes", true},
		{"MPI task with srun", launcher.MPISrun, mpiTask(5), true, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := testLoop()
			l.mpiLauncher = c.launcher
			place := l.admit(at(5), []*wire.Task{c.task})
			if got := len(place) == 1; got != c.wantPlace {
				t.Fatalf("placed %v, want %v", got, c.wantPlace)
			}
			if l.held[c.task.Id] != c.wantPlace {
				t.Errorf("held = %v, want %v", l.held[c.task.Id], c.wantPlace)
			}
			if got := len(l.batch) == 1; got != c.wantBatch {
				t.Fatalf("answered at once %v, want %v", got, c.wantBatch)
			}
			if c.wantBatch {
				r := l.batch[0]
				if r.TaskId != c.task.Id || !strings.Contains(r.Error, c.wantErr) || (c.wantErr == "") != (r.ErrorKind == wire.ErrorKind_NONE) {
					t.Errorf("result %+v, want error %q", r, c.wantErr)
				}
			}
		})
	}
}

// TestAdmitKeepsBytes: the raw bytes of argv, env and cwd become the task's
// fields as they were sent.
func TestAdmitKeepsBytes(t *testing.T) {
	l := testLoop()
	tk := &wire.Task{Id: 1, ArgvRaw: [][]byte{[]byte("ls"), {0xff, 'x'}}, EnvRaw: [][]byte{[]byte("A=\xfe")}, CwdRaw: []byte("/d\xff")}
	place := l.admit(at(0), []*wire.Task{tk})
	if len(place) != 1 || !slices.Equal(place[0].Argv, []string{"ls", "\xffx"}) || !slices.Equal(place[0].Env, []string{"A=\xfe"}) ||
		place[0].Cwd != "/d\xff" || place[0].ArgvRaw != nil {
		t.Errorf("placed %+v", place)
	}
}

// TestSortAndCoalesce drives the results of the slots through the judge,
// the signal grace and coalescing, round by round.
func TestSortAndCoalesce(t *testing.T) {
	type round struct {
		now        int // ms
		terminated int // ms of the pool's SIGTERM; -1 = none
		taken      []*wire.Result
		slotsFed   bool
		want       batchPlan
		wantSent   []uint64 // sent when want is sendBatch
		withheld   []uint64
	}
	cases := []struct {
		name   string
		rounds []round
	}{
		{"a success goes out at once when a slot waits", []round{
			{now: 0, terminated: -1, taken: []*wire.Result{ended(1, 0, wire.ErrorKind_NONE)}, want: sendBatch, wantSent: []uint64{1}},
		}},
		{"coalesced while every slot has work, then sent", []round{
			{now: 0, terminated: -1, taken: []*wire.Result{ended(1, 0, wire.ErrorKind_NONE)}, slotsFed: true, want: holdBatch},
			{now: 1, terminated: -1, taken: []*wire.Result{ended(2, 1, wire.ErrorKind_NONE)}, slotsFed: true, want: holdBatch},
			{now: 2, terminated: -1, slotsFed: true, want: sendBatch, wantSent: []uint64{1, 2}},
		}},
		{"a failure waits for its signal grace", []round{
			{now: 0, terminated: -1, taken: []*wire.Result{ended(1, 0, wire.ErrorKind_EXIT)}, want: noBatch, withheld: []uint64{1}},
			{now: 500, terminated: -1, want: noBatch, withheld: []uint64{1}},
			{now: 1000, terminated: -1, want: sendBatch, wantSent: []uint64{1}},
		}},
		{"held failures go out in the order they ended", []round{
			{now: 0, terminated: -1, taken: []*wire.Result{ended(1, 0, wire.ErrorKind_EXIT), ended(2, 300, wire.ErrorKind_EXIT)}, want: noBatch, withheld: []uint64{1, 2}},
			{now: 1100, terminated: -1, want: sendBatch, wantSent: []uint64{1}, withheld: []uint64{2}},
			{now: 1300, terminated: -1, want: sendBatch, wantSent: []uint64{2}},
		}},
		{"a time limit is the pool's verdict: no grace", []round{
			{now: 0, terminated: -1, taken: []*wire.Result{ended(1, 0, wire.ErrorKind_TIMEOUT)}, want: sendBatch, wantSent: []uint64{1}},
		}},
		{"the batch system strikes during the grace: the task is lost", []round{
			{now: 0, terminated: -1, taken: []*wire.Result{ended(1, 0, wire.ErrorKind_EXIT)}, want: noBatch, withheld: []uint64{1}},
			{now: 300, terminated: 200, want: noBatch, withheld: []uint64{1}},
		}},
		{"after the strike even a success is lost", []round{
			{now: 300, terminated: 200, taken: []*wire.Result{ended(1, 250, wire.ErrorKind_NONE)}, want: noBatch},
		}},
		{"a success long before the strike is reported", []round{
			{now: 3000, terminated: 2000, taken: []*wire.Result{ended(1, 500, wire.ErrorKind_NONE)}, want: sendBatch, wantSent: []uint64{1}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := testLoop()
			for _, r := range c.rounds {
				for _, x := range r.taken {
					l.held[x.TaskId] = true
				}
			}
			for i, r := range c.rounds {
				term := time.Time{}
				if r.terminated >= 0 {
					term = at(r.terminated)
				}
				l.sort(at(r.now), term, r.taken)
				got := l.coalesce(at(r.now), r.slotsFed)
				if got != r.want {
					t.Fatalf("round %d: plan %d, want %d", i, got, r.want)
				}
				if got == sendBatch {
					sent := ids(l.takeBatch())
					if !slices.Equal(sent, r.wantSent) {
						t.Errorf("round %d: sent %v, want %v", i, sent, r.wantSent)
					}
					for _, id := range sent {
						if l.held[id] {
							t.Errorf("round %d: task %d sent and still held", i, id)
						}
					}
				}
				if w := ids(l.withheld); !slices.Equal(w, r.withheld) {
					t.Errorf("round %d: withheld %v, want %v", i, w, r.withheld)
				}
			}
		})
	}
}

func TestCoalesceNotWhileStoppingOrDraining(t *testing.T) {
	for _, mode := range []string{"stopping", "draining"} {
		l := testLoop()
		l.stopping, l.draining = mode == "stopping", mode == "draining"
		l.sort(at(0), time.Time{}, []*wire.Result{ended(1, 0, wire.ErrorKind_NONE)})
		if got := l.coalesce(at(0), true); got != sendBatch {
			t.Errorf("%s: plan %d, want sendBatch", mode, got)
		}
	}
}

func TestTick(t *testing.T) {
	cases := []struct {
		name        string
		setup       func(l *loop)
		now         int // ms
		outboxEmpty bool
		want        tickPlan
		wantErr     string
	}{
		{"quiet", func(l *loop) {}, 1000, true, tickPlan{}, ""},
		{"heartbeat due", func(l *loop) {}, 10_000, true, tickPlan{beat: true}, ""},
		{"shutdown: leave now", func(l *loop) { l.stopping = true }, 10_000, false, tickPlan{exit: true}, ""},
		{"block end near: drain and tell", func(l *loop) { l.blockEnd = at(40_000); l.held[7] = true }, 10_001, true,
			tickPlan{drain: true, notice: true, beat: true}, ""},
		{"drain asked before: no second notice", func(l *loop) { l.blockEnd = at(40_000); l.held[7] = true; l.noticeSent = true }, 10_001, true,
			tickPlan{drain: true, beat: true}, ""},
		{"draining with a task held: stay", func(l *loop) { l.draining = true; l.held[7] = true }, 1000, true, tickPlan{}, ""},
		{"draining, results not acknowledged: stay", func(l *loop) { l.draining = true }, 1000, false, tickPlan{}, ""},
		{"drained: leave", func(l *loop) { l.draining = true }, 1000, true, tickPlan{exit: true}, ""},
		{"block end passed with nothing held: drain and leave", func(l *loop) { l.blockEnd = at(20_000) }, 1000, true,
			tickPlan{drain: true, notice: true, exit: true}, ""},
		{"silent interchange: leave with the reason", func(l *loop) { l.lastBeat = at(60_000) }, 61_000, true,
			tickPlan{exit: true}, "no word from the interchange for 1m1s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := testLoop()
			c.setup(l)
			got := l.tick(at(c.now), c.outboxEmpty)
			gotErr := ""
			if got.err != nil {
				gotErr = got.err.Error()
			}
			got.err = nil
			if got != c.want || !strings.Contains(gotErr, c.wantErr) || (c.wantErr == "") != (gotErr == "") {
				t.Errorf("tick = %+v %q, want %+v %q", got, gotErr, c.want, c.wantErr)
			}
			if got.beat && !l.lastBeat.Equal(at(c.now)) {
				t.Errorf("heartbeat not noted")
			}
			if got.drain && !l.draining {
				t.Errorf("drain decided but not draining")
			}
		})
	}
}

// A pool that was itself stopped past the threshold is lost as its next
// round starts; serve asks before it receives, so that messages that
// waited on its socket (a heartbeat reply queued during the stall) do not
// count as word from the interchange (e2e TestStalledPoolsDoNotHaltScaler).
func TestLostBeforeTheRoundsMessages(t *testing.T) {
	cases := []struct {
		name        string
		lastContact int // ms
		now         int // ms
		wantErr     string
	}{
		{"heard within the threshold", 0, 59_000, ""},
		{"exactly the threshold", 0, 60_000, ""},
		{"stalled past the threshold", 0, 67_000, "no word from the interchange for 1m7s"},
		{"heard recently after a long run", 300_000, 310_000, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := testLoop()
			l.heard(at(c.lastContact))
			err := l.lost(at(c.now))
			if (err != nil) != (c.wantErr != "") || (err != nil && !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("lost = %v, want %q", err, c.wantErr)
			}
		})
	}
}

func TestStartDrainTellsOnce(t *testing.T) {
	l := testLoop()
	if !l.startDrain() || l.startDrain() || !l.draining {
		t.Errorf("startDrain: want one notice and draining")
	}
}

// TestLeave: on the batch system's SIGTERM the results of tasks that ended
// before it struck are reported, held ones included; the rest stay held,
// lost with the pool.
func TestLeave(t *testing.T) {
	l := testLoop()
	for id := uint64(2); id <= 5; id++ {
		l.held[id] = true
	}
	l.batch = []*wire.Result{ended(1, 0, wire.ErrorKind_NONE)} // reported, being coalesced
	l.holdTill = at(2)
	l.withheld = []*wire.Result{ended(2, 100, wire.ErrorKind_EXIT), ended(3, 4_500, wire.ErrorKind_EXIT)}
	taken := []*wire.Result{ended(4, 4_800, wire.ErrorKind_NONE), ended(5, 4_900, wire.ErrorKind_CANCELLED)}
	got := ids(l.leave(at(5_000), at(5_000), taken))
	if want := []uint64{1, 2, 5}; !slices.Equal(got, want) {
		t.Errorf("reported %v, want %v", got, want)
	}
	held := l.heldIDs()
	slices.Sort(held)
	if !slices.Equal(held, []uint64{3, 4}) {
		t.Errorf("held %v, want [3 4] (lost with the pool)", held)
	}
	if l.withheld != nil || l.batch != nil || !l.holdTill.IsZero() {
		t.Errorf("state left: withheld %v batch %v holdTill %v", l.withheld, l.batch, l.holdTill)
	}
}
