package client

import (
	"context"
	"fmt"
	"time"

	"github.com/htex/htex/wire"
)

// Poll asks for the daemon's status (the request `htexctl status` makes)
// and renews a watch on each of jobs, in one round trip: it returns the
// status and the newest progress of each job heard while waiting for the
// status reply. A job whose progress arrives after the status reply is
// reported by the next Poll. Watches on jobs that do not exist are ignored.
func (c *Client) Poll(ctx context.Context, jobs []uint64) (*wire.StatusReply, map[uint64]*wire.Progress, error) {
	progress := map[uint64]*wire.Progress{}
	for _, j := range jobs {
		if _, err := c.send(&wire.Envelope{Body: &wire.Envelope_Watch{Watch: &wire.WatchRequest{JobId: j}}}); err != nil {
			return nil, nil, err
		}
	}
	id, err := c.send(&wire.Envelope{Body: &wire.Envelope_Status{Status: &wire.StatusRequest{}}})
	if err != nil {
		return nil, nil, err
	}
	deadline := time.Now().Add(c.Timeout)
	for {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, nil, c.noAnswer()
		}
		if err := c.rejected(); err != nil {
			return nil, nil, err
		}
		m, err := c.recv(min(left, 100*time.Millisecond))
		if err != nil {
			return nil, nil, err
		}
		if m == nil {
			continue
		}
		switch b := m.Body.(type) {
		case *wire.Envelope_Progress:
			progress[b.Progress.JobId] = b.Progress
		case *wire.Envelope_StatusReply:
			if m.RequestId == id {
				c.awaitProgress(progress, jobs, len(jobs) <= int(b.StatusReply.Jobs))
				return b.StatusReply, progress, nil
			}
		case *wire.Envelope_Error:
			if m.RequestId == id {
				return nil, nil, fmt.Errorf("status: %s", b.Error.Message)
			}
			// an error answering a watch: the job is gone; nothing to show
		}
	}
}

// progressWait bounds the wait, after the status reply, for the progress
// of the watched jobs: the daemon sends progress at the end of the loop
// turn that answered the status, so it follows within a millisecond or so.
const progressWait = 50 * time.Millisecond

// awaitProgress takes the progress messages already waiting and, when
// wait is set, those of watched jobs not heard from yet, up to
// progressWait.
func (c *Client) awaitProgress(progress map[uint64]*wire.Progress, jobs []uint64, wait bool) {
	deadline := time.Now().Add(progressWait)
	for {
		missing := false
		for _, j := range jobs {
			if progress[j] == nil {
				missing = true
			}
		}
		timeout := time.Duration(0)
		if wait && missing {
			timeout = time.Until(deadline)
			if timeout <= 0 {
				return
			}
		}
		m, err := c.recv(timeout)
		if err != nil || m == nil {
			if timeout == 0 || err != nil {
				return
			}
			continue
		}
		if p, ok := m.Body.(*wire.Envelope_Progress); ok {
			progress[p.Progress.JobId] = p.Progress
		}
	}
}

// ResultsPage reads one page of a job's results, from the task after
// afterTask, at most limit rows; more says whether rows follow.
func (c *Client) ResultsPage(ctx context.Context, jobID, afterTask uint64, limit int) ([]*wire.TaskResult, bool, error) {
	r, err := c.call(ctx, &wire.Envelope{Body: &wire.Envelope_ResultsRequest{ResultsRequest: &wire.ResultsRequest{
		JobId: jobID, AfterTaskId: afterTask, Limit: int32(limit)}}})
	if err != nil {
		return nil, false, err
	}
	rep, ok := r.Body.(*wire.Envelope_ResultsReply)
	if !ok {
		return nil, false, fmt.Errorf("results: unexpected reply %T", r.Body)
	}
	return rep.ResultsReply.Results, rep.ResultsReply.More, nil
}
