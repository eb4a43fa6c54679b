package app

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/urfave/cli/v2"

	"github.com/htex/htex/client"
	"github.com/htex/htex/top"
)

func topCommand() *cli.Command {
	return &cli.Command{
		Name:  "top",
		Usage: "a live view of the daemon: tasks and their rate, jobs with progress, blocks, pools, the scaler, the last failures",
		Description: "Keys: q quits, j/k or the arrows select a job, c cancels the selected job (after y),\n" +
			"f shows failures only. It polls the daemon over the client channel: a status request\n" +
			"(as `htexctl status`) and a watch of the newest --jobs jobs every --interval, and a page\n" +
			"of a job's results only when that job has new failures. No colour when NO_COLOR is set\n" +
			"or the output is not a terminal; then, as with --once, it prints one screen and exits.",
		Flags: []cli.Flag{
			runDirFlag,
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "time between polls"},
			&cli.IntFlag{Name: "jobs", Value: 10, Usage: "how many of the newest jobs to follow"},
			&cli.BoolFlag{Name: "once", Usage: "print one screen (two polls, --interval apart, so that rates show) and exit"},
		},
		Action: func(c *cli.Context) error {
			if c.Duration("interval") < 100*time.Millisecond {
				return usageError("top: --interval %s: want at least 100ms", c.Duration("interval"))
			}
			if c.Int("jobs") < 1 {
				return usageError("top: --jobs %d: want at least 1", c.Int("jobs"))
			}
			cl, err := dial(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			feed := newTopFeed(cl, c.Int("jobs"))
			tty := isTerminal(os.Stdout) && isTerminal(os.Stdin)
			if c.Bool("once") || !tty {
				return topOnce(feed, c.Duration("interval"), tty && os.Getenv("NO_COLOR") == "")
			}
			return topLive(feed, c.Duration("interval"), os.Getenv("NO_COLOR") == "")
		},
	}
}

// topOnce prints one screen, sized by $COLUMNS and $LINES when set.
func topOnce(feed *topFeed, interval time.Duration, colour bool) error {
	m := top.New(top.Options{Colour: colour, Width: envInt("COLUMNS", 80), Height: envInt("LINES", 24)})
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if i > 0 {
			time.Sleep(interval)
		}
		s := feed.poll(ctx)
		if s.Err != "" {
			return clientError(fmt.Errorf("top: %s", s.Err))
		}
		m.Update(top.SnapshotMsg(s))
	}
	fmt.Fprintln(out, m.View())
	return nil
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

type cancelReq struct {
	job   uint64
	reply chan top.CancelledMsg
}

// topLive runs the full-screen view. One goroutine owns the client: it
// polls every interval and carries out the cancels the model asks for.
func topLive(feed *topFeed, interval time.Duration, colour bool) error {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	reqs := make(chan cancelReq)
	cancelCmd := func(job uint64) tea.Cmd {
		return func() tea.Msg {
			r := cancelReq{job: job, reply: make(chan top.CancelledMsg, 1)}
			select {
			case reqs <- r:
				return <-r.reply
			case <-ctx.Done():
				return nil
			}
		}
	}
	p := tea.NewProgram(top.New(top.Options{Colour: colour, Cancel: cancelCmd}), tea.WithAltScreen(), tea.WithContext(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			p.Send(top.SnapshotMsg(feed.poll(ctx)))
			select {
			case <-ctx.Done():
				return
			case r := <-reqs:
				msg, err := feed.cl.Cancel(ctx, r.job)
				r.reply <- top.CancelledMsg{JobID: r.job, Message: msg, Err: err}
			case <-tick.C:
			}
		}
	}()
	_, err := p.Run()
	stop()
	wg.Wait()
	if err != nil && ctx.Err() == nil {
		return failure("top: %v", err)
	}
	return nil
}

// topFeed turns polls of the daemon into snapshots: the status, the
// progress of the newest jobs, and the failures of jobs whose failed count
// grew (one page of their results per poll, from where the last page
// stopped).
type topFeed struct {
	cl       *client.Client
	n        int
	jobs     int64
	progress map[uint64]top.Job
	cursor   map[uint64]uint64
	found    map[uint64]map[uint64]bool // failed task ids seen, per job
}

func newTopFeed(cl *client.Client, n int) *topFeed {
	return &topFeed{cl: cl, n: n, progress: map[uint64]top.Job{}, cursor: map[uint64]uint64{}, found: map[uint64]map[uint64]bool{}}
}

func (f *topFeed) poll(ctx context.Context) top.Snapshot {
	st, prog, err := f.cl.Poll(ctx, top.WatchIDs(f.jobs, f.n))
	if err == nil && st.Jobs != f.jobs {
		f.jobs = st.Jobs // new jobs: watch them now rather than a poll later
		st, prog, err = f.cl.Poll(ctx, top.WatchIDs(f.jobs, f.n))
	}
	now := time.Now()
	if err != nil {
		return top.Snapshot{At: now, Err: err.Error()}
	}
	for id, p := range prog {
		f.progress[id] = top.Job{ID: id, Total: p.Total, Succeeded: p.Succeeded, Failed: p.Failed, Complete: p.Complete}
	}
	s := top.Snapshot{At: now, Status: st}
	for _, id := range top.WatchIDs(f.jobs, f.n) {
		j, ok := f.progress[id]
		if !ok {
			continue
		}
		s.Jobs = append(s.Jobs, j)
		if int64(len(f.found[id])) < j.Failed {
			s.Failures = append(s.Failures, f.failures(ctx, id)...)
		}
	}
	return s
}

// failures reads the next page of a job's results and returns the new
// failures in it.
func (f *topFeed) failures(ctx context.Context, job uint64) []top.Failure {
	page, _, err := f.cl.ResultsPage(ctx, job, f.cursor[job], 1000)
	if err != nil {
		return nil // shown by the next poll if the daemon is gone
	}
	cur, fs := top.ScanResults(f.cursor[job], page)
	f.cursor[job] = cur
	if f.found[job] == nil {
		f.found[job] = map[uint64]bool{}
	}
	var fresh []top.Failure
	for _, x := range fs {
		if !f.found[job][x.TaskID] {
			f.found[job][x.TaskID] = true
			fresh = append(fresh, x)
		}
	}
	return fresh
}
