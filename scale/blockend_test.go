package scale

import (
	"slices"
	"testing"
	"time"
)

func TestPollInterval(t *testing.T) {
	p := PollPolicy{Interval: 30 * time.Second, Fast: 5 * time.Second, FastFor: time.Minute}
	old := at(-3600)
	cases := []struct {
		name   string
		p      PollPolicy
		blocks []PollBlock
		want   time.Duration
		why    string
	}{
		{name: "no blocks: steady", p: p, want: 30 * time.Second},
		{name: "settled blocks: steady", p: p, blocks: []PollBlock{{Submitted: old}, {Submitted: old, Changed: at(-61)}},
			want: 30 * time.Second},
		{name: "just submitted", p: p, blocks: []PollBlock{{Submitted: old}, {Submitted: at(-10)}},
			want: 5 * time.Second, why: "just submitted"},
		{name: "submitted a minute ago is settled", p: p, blocks: []PollBlock{{Submitted: at(-60)}},
			want: 30 * time.Second},
		{name: "cancel sent", p: p, blocks: []PollBlock{{Submitted: old, Cancelling: true}},
			want: 5 * time.Second, why: "cancel sent"},
		{name: "pools lost", p: p, blocks: []PollBlock{{Submitted: old, PoolsLost: true}},
			want: 5 * time.Second, why: "pools lost"},
		{name: "pools registered, scheduler says pending", p: p, blocks: []PollBlock{{Submitted: old, Starting: true}},
			want: 5 * time.Second, why: "pools registered"},
		{name: "state changed recently", p: p, blocks: []PollBlock{{Submitted: old, Changed: at(-20)}},
			want: 5 * time.Second, why: "state changed"},
		{name: "fast above interval is the interval",
			p:      PollPolicy{Interval: 2 * time.Second, Fast: 5 * time.Second, FastFor: time.Minute},
			blocks: []PollBlock{{Submitted: at(-1)}}, want: 2 * time.Second, why: "just submitted"},
		{name: "fast unset is the interval",
			p:      PollPolicy{Interval: 30 * time.Second, FastFor: time.Minute},
			blocks: []PollBlock{{Submitted: at(-1)}}, want: 30 * time.Second, why: "just submitted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, why := PollInterval(c.p, at(0), c.blocks)
			if got != c.want || why != c.why {
				t.Errorf("PollInterval = %s, %q; want %s, %q", got, why, c.want, c.why)
			}
		})
	}
}

func TestClassifyEnd(t *testing.T) {
	cases := []struct {
		name string
		e    Ended
		want EndKind
	}{
		{"submitted, never registered", Ended{}, EndStartFailure},
		{"scheduler failed it before registering", Ended{SchedulerFailed: true}, EndStartFailure},
		{"pools registered and died before a task", Ended{Registered: true, SchedulerFailed: true}, EndStartFailure},
		{"pools registered, ended cleanly without tasks", Ended{Registered: true}, EndNeutral},
		{"ran tasks, then its pools lost contact and failed", Ended{Registered: true, RanTasks: true, SchedulerFailed: true}, EndUseful},
		{"ran tasks and completed", Ended{Registered: true, RanTasks: true}, EndUseful},
		{"cancelled for idleness", Ended{Registered: true, CancelledByUs: true}, EndNeutral},
		{"cancelled while pending (scale-in, stop)", Ended{CancelledByUs: true}, EndNeutral},
		{"cancelled for max_pending", Ended{PendingTooLong: true, CancelledByUs: true}, EndStartFailure},
		{"preempted before registering", Ended{Preempted: true}, EndPreempted},
		{"preempted while running tasks", Ended{Preempted: true, Registered: true, RanTasks: true, SchedulerFailed: true}, EndPreempted},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, why := ClassifyEnd(c.e)
			if got != c.want || why == "" {
				t.Errorf("ClassifyEnd(%+v) = %s (%q), want %s", c.e, got, why, c.want)
			}
		})
	}
}

func TestPendingTooLong(t *testing.T) {
	blocks := []Waiting{{ID: 1, Since: at(-600)}, {ID: 2, Since: at(-300)}, {ID: 3, Since: at(-299)}, {ID: 4}}
	cases := []struct {
		name string
		max  time.Duration
		want []int64
	}{
		{"off", 0, nil},
		{"five minutes: at or past the limit", 5 * time.Minute, []int64{1, 2}},
		{"an hour: none", time.Hour, nil},
		{"a second: all with a start time", time.Second, []int64{1, 2, 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := PendingTooLong(c.max, at(0), blocks); !slices.Equal(got, c.want) {
				t.Errorf("PendingTooLong(%s) = %v, want %v", c.max, got, c.want)
			}
		})
	}
}

// TestBreaker drives the failed-block limit through scripted ends and
// clock ticks.
func TestBreaker(t *testing.T) {
	p := BreakerPolicy{MaxFailures: 3, Backoff: 10 * time.Minute}
	type step struct {
		at      float64 // seconds after t0
		end     *EndKind
		halts   bool // this end halts the breaker
		resumes bool // a tick at this time resumes it
		halted  bool // halted after the step
	}
	fail, useful, neutral, preempted := EndStartFailure, EndUseful, EndNeutral, EndPreempted
	cases := []struct {
		name  string
		steps []step
	}{
		{"three failures halt; resume after the back-off", []step{
			{at: 0, end: &fail}, {at: 1, end: &fail}, {at: 2, end: &fail, halts: true, halted: true},
			{at: 300, halted: true},
			{at: 601, halted: true},
			{at: 602, resumes: true},
		}},
		{"a useful block ends the streak", []step{
			{at: 0, end: &fail}, {at: 1, end: &fail}, {at: 2, end: &useful},
			{at: 3, end: &fail}, {at: 4, end: &fail},
		}},
		{"neutral and preempted ends neither count nor reset", []step{
			{at: 0, end: &fail}, {at: 1, end: &preempted}, {at: 2, end: &neutral}, {at: 3, end: &preempted},
			{at: 4, end: &fail}, {at: 5, end: &fail, halts: true, halted: true},
		}},
		{"after resuming one more failure halts for twice as long", []step{
			{at: 0, end: &fail}, {at: 0, end: &fail}, {at: 0, end: &fail, halts: true, halted: true},
			{at: 600, resumes: true},
			{at: 610, end: &fail, halts: true, halted: true},
			{at: 610 + 1199, halted: true},
			{at: 610 + 1200, resumes: true},
			{at: 2000, end: &useful},
			{at: 2001, end: &fail}, {at: 2002, end: &fail},
		}},
		{"failures while halted do not extend the halt", []step{
			{at: 0, end: &fail}, {at: 0, end: &fail}, {at: 0, end: &fail, halts: true, halted: true},
			{at: 100, end: &fail, halted: true},
			{at: 600, resumes: true},
		}},
		{"the back-off stops doubling at eight times", []step{
			{at: 0, end: &fail}, {at: 0, end: &fail}, {at: 0, end: &fail, halts: true, halted: true},
			{at: 600, resumes: true}, {at: 600, end: &fail, halts: true, halted: true}, // 2x
			{at: 1800, resumes: true}, {at: 1800, end: &fail, halts: true, halted: true}, // 4x
			{at: 4200, resumes: true}, {at: 4200, end: &fail, halts: true, halted: true}, // 8x
			{at: 9000, resumes: true}, {at: 9000, end: &fail, halts: true, halted: true}, // 8x again
			{at: 9000 + 4799, halted: true},
			{at: 9000 + 4800, resumes: true},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b Breaker
			for i, s := range c.steps {
				now := at(s.at)
				var halts, resumes bool
				b, resumes = b.Tick(p, now)
				if s.end != nil {
					b, halts = b.Record(p, *s.end, now)
				}
				if halts != s.halts || resumes != s.resumes || b.Halted() != s.halted {
					t.Fatalf("step %d (%+v): halts=%v resumes=%v halted=%v, breaker %+v, resume at %s",
						i, s, halts, resumes, b.Halted(), b, b.ResumeAt(p).Sub(t0))
				}
			}
		})
	}
}
