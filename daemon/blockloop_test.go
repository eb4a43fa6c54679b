package daemon

// The block loop against a scripted provider and a real interchange and
// journal: what status shows of a waiting block, max_pending, preempted
// and requeued blocks, the failed-block halt and its back-off, and the
// lock discipline of the fields the interchange reads (run with -race).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/htex/htex/config"
	"github.com/htex/htex/interchange"
	"github.com/htex/htex/journal"
	"github.com/htex/htex/providers"
	"github.com/htex/htex/rundir"
)

// scripted is a provider whose jobs follow a script: the status of a job
// at its n-th status call (n from 0).
type scripted struct {
	script    func(n int) providers.Status
	submitErr error

	mu        sync.Mutex
	submitted int
	polls     map[string]int
	cancelled map[string]bool
	calls     int // Status calls
}

func (p *scripted) Name() string { return "fake" }

func (p *scripted) Submit(ctx context.Context, s providers.Submission) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.submitErr != nil {
		return "", p.submitErr
	}
	p.submitted++
	return strconv.Itoa(1000 + p.submitted), nil
}

func (p *scripted) Status(ctx context.Context, ids []string) (map[string]providers.Status, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	out := map[string]providers.Status{}
	for _, id := range ids {
		if p.cancelled[id] {
			out[id] = providers.Status{State: providers.Cancelled}
			continue
		}
		out[id] = p.script(p.polls[id])
		p.polls[id]++
	}
	return out, nil
}

func (p *scripted) Cancel(ctx context.Context, ids []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		p.cancelled[id] = true
	}
	return nil
}

func (p *scripted) counts() (submitted, cancelled, calls int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.submitted, len(p.cancelled), p.calls
}

// syncBuffer is a log sink safe for the loop's and the test's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// loopConfig is a local config with fast periods; strategy lines are TOML.
func loopConfig(t *testing.T, strategy string) *config.Config {
	t.Helper()
	c, err := config.Parse(`
[executor]
encrypted = false
[provider]
min_blocks = 1
status_polling_interval = 0.05
status_polling_fast = 0.05
[strategy]
period = 0.05
` + strategy)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startLoop runs a block loop with a real interchange and journal until
// the test ends; it returns the loop and its log.
func startLoop(t *testing.T, cfg *config.Config, prov providers.Provider) (*blockLoop, *syncBuffer) {
	t.Helper()
	dir := t.TempDir()
	if err := rundir.Create(dir); err != nil {
		t.Fatal(err)
	}
	jr, err := journal.Open(filepath.Join(dir, rundir.JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := newBlockLoop(cfg, Options{Config: cfg, RunDir: dir, Executable: "/bin/false", Log: log}, prov, jr, log)
	ix, err := interchange.New(interchange.Options{Label: "t", RunDir: dir, Provider: prov.Name(), BindHost: "127.0.0.1",
		HeartbeatPeriod: time.Second, HeartbeatThreshold: 5 * time.Second, Journal: jr, Log: log, Blocks: l})
	if err != nil {
		t.Fatal(err)
	}
	l.ix = ix
	if err := l.adopt(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ixDone, loopDone := make(chan error, 1), make(chan struct{})
	go func() { ixDone <- ix.Run(ctx) }()
	go func() { defer close(loopDone); l.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-loopDone
		<-ixDone
		jr.Close()
	})
	return l, logs
}

// eventually waits up to 20 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func blockMessages(l *blockLoop) []string {
	var out []string
	for _, b := range l.BlockStatuses() {
		out = append(out, fmt.Sprintf("%d %s %s", b.Id, b.State, b.Message))
	}
	return out
}

func pendingFor(reason string, stuck bool) func(int) providers.Status {
	return func(int) providers.Status {
		return providers.Status{State: providers.Pending, Message: reason, Stuck: stuck}
	}
}

// TestWaitingBlockShowsReason: status shows the scheduler's reason for a
// waiting block, and the daemon logs each reason once, however often it
// polls.
func TestWaitingBlockShowsReason(t *testing.T) {
	for _, c := range []struct {
		name, reason string
		stuck        bool
		level, tail  string
	}{
		{"stuck", "JobHeldUser", true, "level=WARN", "will not clear by itself"},
		{"ordinary", "Priority", false, "level=INFO", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			prov := &scripted{script: pendingFor(c.reason, c.stuck), polls: map[string]int{}, cancelled: map[string]bool{}}
			l, logs := startLoop(t, loopConfig(t, ""), prov)
			want := "waiting: fake says " + c.reason
			eventually(t, "the reason in status", func() bool {
				m := blockMessages(l)
				return len(m) == 1 && strings.Contains(m[0], want) && strings.Contains(m[0], c.tail)
			})
			eventually(t, "ten polls", func() bool { _, _, calls := prov.counts(); return calls >= 10 })
			if n := strings.Count(logs.String(), "msg=\"block waits"); n != 1 {
				t.Errorf("the reason was logged %d times, want once:\n%s", n, logs.String())
			}
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, "block waits") && !strings.Contains(line, c.level) {
					t.Errorf("log line %q: want %s", line, c.level)
				}
			}
		})
	}
}

// TestMaxPending: a block pending past max_pending is cancelled and
// counted; after max_block_failures the scaler halts and says how it
// resumes. Without max_pending the block waits on.
func TestMaxPending(t *testing.T) {
	prov := &scripted{script: pendingFor("InvalidAccount", true), polls: map[string]int{}, cancelled: map[string]bool{}}
	l, _ := startLoop(t, loopConfig(t, "max_pending = 0.3\nmax_block_failures = 2\nfailure_backoff = \"1h\""), prov)
	eventually(t, "the halt", func() bool { return strings.Contains(l.ScalerSummary(), "stopped submitting blocks after 2 failed") })
	sum := l.ScalerSummary()
	for _, want := range []string{"resuming by itself at", "strategy.failure_backoff 1h0m0s", "restart the daemon",
		"longer than strategy.max_pending 300ms (fake says InvalidAccount)"} {
		if !strings.Contains(sum, want) {
			t.Errorf("scaler summary lacks %q:\n%s", want, sum)
		}
	}
	time.Sleep(500 * time.Millisecond) // halted: nothing more is submitted
	if submitted, cancelled, _ := prov.counts(); submitted != 2 || cancelled != 2 {
		t.Errorf("submitted %d, cancelled %d; want 2 and 2", submitted, cancelled)
	}
	for _, m := range blockMessages(l) {
		if !strings.Contains(m, "cancelled: pending") {
			t.Errorf("block message %q: want the max_pending cancellation", m)
		}
	}

	prov2 := &scripted{script: pendingFor("InvalidAccount", true), polls: map[string]int{}, cancelled: map[string]bool{}}
	l2, _ := startLoop(t, loopConfig(t, ""), prov2)
	eventually(t, "polls", func() bool { _, _, calls := prov2.counts(); return calls >= 20 })
	if submitted, cancelled, _ := prov2.counts(); submitted != 1 || cancelled != 0 {
		t.Errorf("without max_pending: submitted %d, cancelled %d; want 1 and 0 (%v)", submitted, cancelled, blockMessages(l2))
	}
}

// TestEndsThatDoNotCount: blocks that the scheduler preempts, or that it
// requeues after they ran, never halt the scaler, even with
// max_block_failures = 1; a block that fails the same way does.
func TestEndsThatDoNotCount(t *testing.T) {
	run := providers.Status{State: providers.Running}
	cases := []struct {
		name   string
		script func(n int) providers.Status
		halts  bool
		msg    string
	}{
		{"preempted while pending", func(n int) providers.Status {
			return providers.Status{State: providers.Preempted}
		}, false, "preempted by the scheduler"},
		{"preempted after running", func(n int) providers.Status {
			if n < 2 {
				return run
			}
			return providers.Status{State: providers.Preempted}
		}, false, "preempted by the scheduler"},
		{"requeued after running, then preempted", func(n int) providers.Status {
			switch {
			case n < 2:
				return run
			case n < 4:
				return providers.Status{State: providers.Pending, Message: "BeginTime"}
			}
			return providers.Status{State: providers.Preempted}
		}, false, "preempted by the scheduler"},
		{"failed", func(n int) providers.Status {
			return providers.Status{State: providers.Failed, Message: "NonZeroExitCode"}
		}, true, "before any pool registered"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prov := &scripted{script: c.script, polls: map[string]int{}, cancelled: map[string]bool{}}
			l, logs := startLoop(t, loopConfig(t, "max_block_failures = 1\nfailure_backoff = \"1h\""), prov)
			if c.halts {
				eventually(t, "the halt", func() bool { return strings.Contains(l.ScalerSummary(), "stopped submitting") })
				time.Sleep(300 * time.Millisecond)
				if submitted, _, _ := prov.counts(); submitted != 1 {
					t.Errorf("submitted %d blocks, want 1", submitted)
				}
			} else {
				eventually(t, "four blocks", func() bool { submitted, _, _ := prov.counts(); return submitted >= 4 })
				if s := l.ScalerSummary(); strings.Contains(s, "stopped submitting") {
					t.Errorf("halted: %s", s)
				}
			}
			found := false
			for _, m := range blockMessages(l) {
				found = found || strings.Contains(m, c.msg)
			}
			if !found {
				t.Errorf("no block message holds %q: %v", c.msg, blockMessages(l))
			}
			if strings.Contains(c.name, "requeued") && !strings.Contains(logs.String(), "block back in the scheduler's queue after running") {
				t.Errorf("the requeue was not logged:\n%s", logs.String())
			}
		})
	}
}

// TestHaltResumes: after the back-off the scaler submits again, and one
// more failure halts it for twice as long.
func TestHaltResumes(t *testing.T) {
	prov := &scripted{script: func(int) providers.Status { return providers.Status{State: providers.Failed} },
		polls: map[string]int{}, cancelled: map[string]bool{}}
	l, logs := startLoop(t, loopConfig(t, "max_block_failures = 2\nfailure_backoff = 0.4"), prov)
	eventually(t, "the first halt", func() bool { return strings.Contains(l.ScalerSummary(), "stopped submitting blocks after 2") })
	eventually(t, "the resume and a second halt", func() bool {
		submitted, _, _ := prov.counts()
		return submitted >= 3 && strings.Contains(logs.String(), "resuming block submission") &&
			strings.Contains(l.ScalerSummary(), "stopped submitting blocks after 3")
	})
	if s := l.ScalerSummary(); !strings.Contains(s, "strategy.failure_backoff 800ms") {
		t.Errorf("the second halt should last twice the back-off: %s", s)
	}
}

// TestPollingSettles: once no block changes state, the scheduler is asked
// every status_polling_interval, not every scaler period. Only an upper
// bound on the calls is checked: a slow machine makes fewer.
func TestPollingSettles(t *testing.T) {
	prov := &scripted{script: pendingFor("Priority", false), polls: map[string]int{}, cancelled: map[string]bool{}}
	cfg := loopConfig(t, "")
	cfg.Provider.StatusPollingInterval = config.Duration(500 * time.Millisecond)
	startLoop(t, cfg, prov)
	// Changing for pollFastFor(500ms, 50ms) = 1 s after the submission.
	time.Sleep(1500 * time.Millisecond)
	_, _, before := prov.counts()
	time.Sleep(2 * time.Second)
	_, _, after := prov.counts()
	if n := after - before; n > 5 {
		t.Errorf("%d status calls in 2 s with status_polling_interval 500ms (scaler period 50ms), want at most 5", n)
	}
	if submitted, _, _ := prov.counts(); submitted != 1 {
		t.Errorf("%d blocks submitted, want 1", submitted)
	}
}

// TestBlockFieldsUnderLock drives the failure paths of submit (no block
// folder, a refused submission) while another goroutine reads the blocks
// the way status does; -race reports any field written without l.mu.
func TestBlockFieldsUnderLock(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, l *blockLoop, p *scripted)
	}{
		{"submission refused", func(t *testing.T, l *blockLoop, p *scripted) {}},
		{"no block folder", func(t *testing.T, l *blockLoop, p *scripted) {
			blocks := filepath.Join(l.opt.RunDir, rundir.BlocksDir)
			if err := os.RemoveAll(blocks); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(blocks, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			prov := &scripted{submitErr: errors.New("sbatch: error: invalid account"), polls: map[string]int{}, cancelled: map[string]bool{}}
			cfg := loopConfig(t, "max_block_failures = 1000")
			l, _ := newLoopNotRunning(t, cfg, prov)
			c.setup(t, l, prov)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
						l.BlockStatuses()
						l.ScalerSummary()
						l.PoolRegistered(0)
					}
				}
			}()
			ctx := context.Background()
			for range 20 {
				l.submit(ctx)
				l.poll(ctx)
			}
			close(stop)
			wg.Wait()
			if got := len(l.BlockStatuses()); got != 20 {
				t.Errorf("%d blocks in status, want 20", got)
			}
			for _, m := range blockMessages(l) {
				if !strings.Contains(m, "failed") {
					t.Errorf("block %q: want its failure", m)
				}
			}
		})
	}
}

// newLoopNotRunning is startLoop without the scaler goroutine: the test
// calls the loop's steps itself.
func newLoopNotRunning(t *testing.T, cfg *config.Config, prov providers.Provider) (*blockLoop, *syncBuffer) {
	t.Helper()
	dir := t.TempDir()
	if err := rundir.Create(dir); err != nil {
		t.Fatal(err)
	}
	jr, err := journal.Open(filepath.Join(dir, rundir.JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	l := newBlockLoop(cfg, Options{Config: cfg, RunDir: dir, Executable: "/bin/false", Log: log}, prov, jr, log)
	ix, err := interchange.New(interchange.Options{Label: "t", RunDir: dir, Provider: prov.Name(), BindHost: "127.0.0.1",
		HeartbeatPeriod: time.Second, HeartbeatThreshold: 5 * time.Second, Journal: jr, Log: log, Blocks: l})
	if err != nil {
		t.Fatal(err)
	}
	l.ix = ix
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; jr.Close() })
	return l, logs
}
