// Package client talks to a running daemon over the client channel: submit
// tasks, watch a job's progress, read results and status, cancel, stop. It
// finds the daemon through the run directory's connection file and is used
// by htexctl's client verbs (and may be used by Go programs). A Client is
// not safe for concurrent use.
package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/htex/htex/internal/zsock"
	"github.com/htex/htex/rundir"
	"github.com/htex/htex/wire"
)

// ErrNoDaemon means no daemon answered at the run directory.
var ErrNoDaemon = errors.New("no daemon answers")

// ErrSecurity means the daemon answered but the security handshake failed:
// the keys or the encryption setting do not match the daemon's.
var ErrSecurity = errors.New("the daemon rejected this client's connection")

// DefaultTimeout bounds each request.
const DefaultTimeout = 10 * time.Second

// handshakeGrace is how long a failed handshake may wait for another
// address of the daemon to succeed before the client gives up.
const handshakeGrace = 500 * time.Millisecond

// Client is a connection to one daemon.
type Client struct {
	RunDir  string
	Conn    *rundir.Connection
	Timeout time.Duration
	sock    *zmq.Socket
	hs      *zsock.Handshakes
	nextReq uint64
	poller  *zmq.Poller
	gone    bool // the connection file's daemon pid is gone from this host
}

// goneGrace bounds the wait for a daemon whose pid no longer exists on
// this host (killed, leaving its connection file): a live daemon answers
// within it even when the pid check is fooled (another pid namespace).
const goneGrace = 2 * time.Second

// Dial reads the run directory and connects. It does not wait for an
// answer: the first request does.
func Dial(runDir string) (*Client, error) {
	conn, err := rundir.ReadConnection(runDir)
	if err != nil {
		if errors.Is(err, rundir.ErrNoDaemon) {
			if pid := servingPid(runDir); pid > 0 {
				return nil, fmt.Errorf("%w at %s yet: the daemon (pid %d in %s) runs, but its connection file is missing (deleted?); it writes it again within seconds: try again, or stop that daemon with `kill -TERM %d`",
					ErrNoDaemon, runDir, pid, rundir.PidFile, pid)
			}
			return nil, fmt.Errorf("%w at %s (no connection file: start one with `htexctl serve`)", ErrNoDaemon, runDir)
		}
		return nil, err
	}
	if conn.ProtocolVersion != wire.Version {
		return nil, fmt.Errorf("the daemon at %s speaks protocol version %d, this htexctl speaks version %d", runDir, conn.ProtocolVersion, wire.Version)
	}
	var sec *zsock.ClientSecurity
	if conn.Encrypted {
		kp, err := rundir.LoadKeyPair(runDir, rundir.Client)
		if err != nil {
			return nil, fmt.Errorf("client key: %w", err)
		}
		sec = &zsock.ClientSecurity{ServerPublic: conn.ServerPublicKey, Public: kp.Public, Secret: kp.Secret}
	}
	eps, err := endpoints(conn)
	if err != nil {
		return nil, err
	}
	sock, hs, err := dialFirst(eps, sec, DefaultTimeout)
	if err != nil {
		return nil, err
	}
	p := zmq.NewPoller()
	p.Add(sock, zmq.POLLIN)
	return &Client{RunDir: runDir, Conn: conn, Timeout: DefaultTimeout, sock: sock, hs: hs, poller: p, gone: pidGone(conn)}, nil
}

// servingPid returns the pid of the run directory's pid file when that
// process runs `htexctl serve` on this host, else 0.
func servingPid(runDir string) int {
	b, err := os.ReadFile(filepath.Join(runDir, rundir.PidFile))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "serve") {
		return 0
	}
	return pid
}

// pidGone reports whether the connection file names a process on this host
// that no longer exists.
func pidGone(c *rundir.Connection) bool {
	host, _ := os.Hostname()
	if c.Pid <= 0 || host == "" || host != c.Hostname {
		return false
	}
	return errors.Is(syscall.Kill(c.Pid, 0), syscall.ESRCH)
}

// endpoints is loopback alone when the daemon runs on this host, else
// every address the daemon advertises.
func endpoints(c *rundir.Connection) ([]string, error) {
	if host, _ := os.Hostname(); host == c.Hostname {
		return []string{zsock.Endpoint("127.0.0.1", c.ClientPort)}, nil
	}
	addrs, err := zsock.NumericHosts(context.Background(), c.Addresses)
	if err != nil {
		return nil, fmt.Errorf("daemon address: %w", err)
	}
	var eps []string
	for _, a := range addrs {
		eps = append(eps, zsock.Endpoint(a, c.ClientPort))
	}
	return eps, nil
}

// dialFirst connects to the first endpoint whose handshake succeeds and
// closes the others. A client keeps one connection: the daemon knows a
// client by its connection, so a socket spread over several addresses of
// one daemon would look like several clients (and a watch would be served
// once per connection). When no handshake succeeds within wait, the first
// endpoint's socket is kept, and its handshake errors surface on use.
func dialFirst(eps []string, sec *zsock.ClientSecurity, wait time.Duration) (*zmq.Socket, *zsock.Handshakes, error) {
	if len(eps) == 1 {
		return zsock.WatchedDealer(eps, "", true, sec)
	}
	socks := make([]*zmq.Socket, 0, len(eps))
	hss := make([]*zsock.Handshakes, 0, len(eps))
	keep := func(k int) (*zmq.Socket, *zsock.Handshakes, error) {
		for i := range socks {
			if i != k {
				hss[i].Close()
				socks[i].Close()
			}
		}
		return socks[k], hss[k], nil
	}
	for _, ep := range eps {
		s, hs, err := zsock.WatchedDealer([]string{ep}, "", true, sec)
		if err != nil {
			for i := range socks {
				hss[i].Close()
				socks[i].Close()
			}
			return nil, nil, err
		}
		socks, hss = append(socks, s), append(hss, hs)
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		failed := 0
		for i, hs := range hss {
			if hs.Succeeded() {
				return keep(i)
			}
			if hs.Seen() != nil {
				failed++
			}
		}
		if failed == len(hss) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	return keep(0)
}

// Close closes the socket.
func (c *Client) Close() error {
	c.hs.Close()
	return c.sock.Close()
}

// noAnswer is the error of a request that timed out: a handshake failure
// when one was seen, else no daemon.
func (c *Client) noAnswer() error {
	if he := c.hs.Seen(); he != nil {
		return c.securityError(he)
	}
	if c.gone {
		return fmt.Errorf("%w at %s: the daemon of its connection file (pid %d on %s) is gone (killed?); start one with `htexctl serve`",
			ErrNoDaemon, c.RunDir, c.Conn.Pid, c.Conn.Hostname)
	}
	return fmt.Errorf("%w at %s within %s (is `htexctl serve` running? pid %d on %s in the connection file)",
		ErrNoDaemon, c.RunDir, c.Timeout, c.Conn.Pid, c.Conn.Hostname)
}

// rejected returns an error once the handshakes with the daemon have failed
// for handshakeGrace with none succeeding: no request can get through.
func (c *Client) rejected() error {
	if he := c.hs.Failed(handshakeGrace); he != nil {
		return c.securityError(he)
	}
	return nil
}

func (c *Client) securityError(he *zsock.HandshakeError) error {
	keys := filepath.Join(c.RunDir, rundir.KeysDir)
	switch {
	case he.Refused:
		return fmt.Errorf("%w: the daemon at %s refused this client's key (ZAP status %d): the keys in %s may not belong to this daemon (copied from another run directory?), or the key in client.key is not a client key (pool keys cannot submit)",
			ErrSecurity, he.Endpoint, he.Status, keys)
	case !c.Conn.Encrypted:
		return fmt.Errorf("%w: the daemon at %s does not accept plain-text clients: %s says encrypted=false, but the daemon listening there is encrypted (or is not the daemon of this run directory)",
			ErrSecurity, he.Endpoint, filepath.Join(c.RunDir, rundir.ConnectionFile))
	default:
		return fmt.Errorf("%w: the encrypted handshake with the daemon at %s failed: the server_public_key in %s or the keys in %s may not belong to this daemon (copied from another run directory?), or the daemon there runs with encrypted = false",
			ErrSecurity, he.Endpoint, filepath.Join(c.RunDir, rundir.ConnectionFile), keys)
	}
}

// send sends a request without waiting.
func (c *Client) send(m *wire.Envelope) (uint64, error) {
	c.nextReq++
	m.RequestId = c.nextReq
	b, err := wire.Encode(m)
	if err != nil {
		return 0, err
	}
	// With ZMQ_IMMEDIATE a send blocks until a connection is up; do it in
	// DONTWAIT steps so that a dead daemon gives a clear error.
	wait := c.Timeout
	if c.gone {
		wait = min(wait, goneGrace)
	}
	deadline := time.Now().Add(wait)
	for {
		_, err := c.sock.SendBytes(b, zmq.DONTWAIT)
		if err == nil {
			return m.RequestId, nil
		}
		if zmq.AsErrno(err) != zmq.Errno(11) { // EAGAIN
			return 0, fmt.Errorf("send: %w", err)
		}
		if err := c.rejected(); err != nil {
			return 0, err
		}
		if time.Now().After(deadline) {
			return 0, c.noAnswer()
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recv waits up to timeout for one message.
func (c *Client) recv(timeout time.Duration) (*wire.Envelope, error) {
	polled, err := c.poller.Poll(timeout)
	if err != nil {
		return nil, fmt.Errorf("poll: %w", err)
	}
	if len(polled) == 0 {
		return nil, nil
	}
	b, err := c.sock.RecvBytes(0)
	if err != nil {
		return nil, fmt.Errorf("receive: %w", err)
	}
	m, err := wire.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("bad reply from the daemon: %w", err)
	}
	return m, nil
}

// call sends a request and waits for the reply with the same request id.
func (c *Client) call(ctx context.Context, m *wire.Envelope) (*wire.Envelope, error) {
	id, err := c.send(m)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(c.Timeout)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, c.noAnswer()
		}
		if err := c.rejected(); err != nil {
			return nil, err
		}
		r, err := c.recv(min(left, 100*time.Millisecond))
		if err != nil {
			return nil, err
		}
		if r == nil || r.RequestId != id {
			continue
		}
		if e, ok := r.Body.(*wire.Envelope_Error); ok {
			return nil, errors.New(e.Error.Message)
		}
		return r, nil
	}
}

// SubmitChunk is the most tasks sent per request; a request also stays
// within wire.BatchBytes.
const SubmitChunk = 20000

// Submit sends tasks as one job and returns its id once every task is
// durable in the daemon's journal. A task over the size limits
// or with a NUL byte (wire.CheckTask) is refused before anything is sent.
func (c *Client) Submit(ctx context.Context, name string, specs []*wire.TaskSpec) (uint64, error) {
	return c.SubmitFrom(ctx, name, Specs(specs))
}

// SubmitFrom is Submit with tasks made on demand: the client holds one
// request's tasks at a time, whatever the job's size.
func (c *Client) SubmitFrom(ctx context.Context, name string, src Source) (uint64, error) {
	if src.N == 0 {
		return 0, errors.New("submit: no tasks")
	}
	if err := src.check(); err != nil {
		return 0, fmt.Errorf("submit: %w", err)
	}
	var jobID uint64
	var buf []*wire.TaskSpec
	for start := 0; start < src.N; {
		buf = src.chunk(start, buf)
		end := start + len(buf)
		r, err := c.call(ctx, &wire.Envelope{Body: &wire.Envelope_Submit{Submit: &wire.SubmitRequest{
			Tasks: buf, Name: name, JobId: jobID, Last: end == src.N}}})
		start = end
		if err != nil {
			return jobID, err
		}
		rep, ok := r.Body.(*wire.Envelope_SubmitReply)
		if !ok {
			return jobID, fmt.Errorf("submit: unexpected reply %T", r.Body)
		}
		jobID = rep.SubmitReply.JobId
	}
	return jobID, nil
}

// Status asks for the daemon's status.
func (c *Client) Status(ctx context.Context) (*wire.StatusReply, error) {
	r, err := c.call(ctx, &wire.Envelope{Body: &wire.Envelope_Status{Status: &wire.StatusRequest{}}})
	if err != nil {
		return nil, err
	}
	rep, ok := r.Body.(*wire.Envelope_StatusReply)
	if !ok {
		return nil, fmt.Errorf("status: unexpected reply %T", r.Body)
	}
	return rep.StatusReply, nil
}

// Results pages through the results of a job (0 = all jobs).
func (c *Client) Results(ctx context.Context, jobID uint64, each func(*wire.TaskResult) error) error {
	var after uint64
	for {
		r, err := c.call(ctx, &wire.Envelope{Body: &wire.Envelope_ResultsRequest{ResultsRequest: &wire.ResultsRequest{
			JobId: jobID, AfterTaskId: after, Limit: 1000}}})
		if err != nil {
			return err
		}
		rep, ok := r.Body.(*wire.Envelope_ResultsReply)
		if !ok {
			return fmt.Errorf("results: unexpected reply %T", r.Body)
		}
		for _, tr := range rep.ResultsReply.Results {
			if err := each(tr); err != nil {
				return err
			}
			after = tr.TaskId
		}
		if !rep.ResultsReply.More {
			return nil
		}
	}
}

// Cancel cancels a job's unfinished tasks.
func (c *Client) Cancel(ctx context.Context, jobID uint64) (string, error) {
	r, err := c.call(ctx, &wire.Envelope{Body: &wire.Envelope_Cancel{Cancel: &wire.CancelRequest{JobId: jobID}}})
	if err != nil {
		return "", err
	}
	if a, ok := r.Body.(*wire.Envelope_Ack); ok {
		return a.Ack.Message, nil
	}
	return "", fmt.Errorf("cancel: unexpected reply %T", r.Body)
}

// Stop asks the daemon to stop.
func (c *Client) Stop(ctx context.Context) error {
	_, err := c.call(ctx, &wire.Envelope{Body: &wire.Envelope_Stop{Stop: &wire.StopRequest{}}})
	return err
}

// Watch follows a job until it is complete, calling fn with every progress
// message. With wantResults, progress messages carry finished tasks.
// The watch is renewed every second, so it survives a daemon restart.
func (c *Client) Watch(ctx context.Context, jobID uint64, wantResults bool, fn func(*wire.Progress)) (*wire.Progress, error) {
	req := &wire.Envelope{Body: &wire.Envelope_Watch{Watch: &wire.WatchRequest{JobId: jobID, WantResults: wantResults}}}
	if _, err := c.send(req); err != nil {
		return nil, err
	}
	lastRenew, lastHeard := time.Now(), time.Now()
	silence := max(c.Timeout, 30*time.Second)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, err := c.recv(250 * time.Millisecond)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		if m != nil {
			lastHeard = now
			switch b := m.Body.(type) {
			case *wire.Envelope_Progress:
				if b.Progress.JobId != jobID {
					continue
				}
				fn(b.Progress)
				if b.Progress.Complete {
					return b.Progress, nil
				}
			case *wire.Envelope_Error:
				return nil, errors.New(b.Error.Message)
			}
		}
		if now.Sub(lastRenew) >= time.Second {
			lastRenew = now
			if _, err := c.send(req); err != nil {
				return nil, err
			}
		}
		if err := c.rejected(); err != nil {
			return nil, err
		}
		if now.Sub(lastHeard) > silence {
			return nil, fmt.Errorf("%w at %s for %s while watching job %d", ErrNoDaemon, c.RunDir, silence, jobID)
		}
	}
}

// ParseJobID parses a job id argument.
func ParseJobID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("job id %q: want a positive integer", s)
	}
	return id, nil
}

// SendSubmit sends one submit request without waiting for its reply
// (pipelined submission); the reply arrives through Next.
func (c *Client) SendSubmit(name string, jobID uint64, specs []*wire.TaskSpec, last bool) (uint64, error) {
	return c.send(&wire.Envelope{Body: &wire.Envelope_Submit{Submit: &wire.SubmitRequest{
		Tasks: specs, Name: name, JobId: jobID, Last: last}}})
}

// SendWatch starts or renews a watch without waiting.
func (c *Client) SendWatch(jobID uint64, wantResults bool) error {
	_, err := c.send(&wire.Envelope{Body: &wire.Envelope_Watch{Watch: &wire.WatchRequest{JobId: jobID, WantResults: wantResults}}})
	return err
}

// Next returns the next message from the daemon, or nil after timeout.
func (c *Client) Next(timeout time.Duration) (*wire.Envelope, error) {
	return c.recv(timeout)
}
