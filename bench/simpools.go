package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/htex/htex/internal/zsock"
	"github.com/htex/htex/wire"
)

// SimOptions configure simulated pools: they speak the worker protocol
// over ZeroMQ (with CURVE when Security is set) like `htexctl worker`,
// register, heartbeat, and answer every task at once as a noop success,
// so that the daemon's side of many pools can be measured on one machine.
type SimOptions struct {
	Endpoint     string // the worker channel, tcp://host:port
	Security     *zsock.ClientSecurity
	Pools        int
	SlotsPerPool int
	Prefetch     int
	Heartbeat    time.Duration
	Shards       int // goroutines that serve the pools' sockets (0 = up to 4)
}

// simPool is one simulated pool's socket and counters.
type simPool struct {
	id   string
	sock *zmq.Socket
	reg  []byte // its encoded Register
	seq  uint64
	done bool
}

// RunSimPools runs the pools until ctx ends or the daemon tells every pool
// to shut down. A pool refused by the daemon is an error.
func RunSimPools(ctx context.Context, o SimOptions) error {
	if o.Pools < 1 || o.SlotsPerPool < 1 {
		return fmt.Errorf("simulated pools: pools %d and slots per pool %d must be at least 1", o.Pools, o.SlotsPerPool)
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 10 * time.Second
	}
	// Each pool is a socket; libzmq allows 1023 per context by default.
	if err := zmq.SetMaxSockets(o.Pools + 64); err != nil {
		return fmt.Errorf("simulated pools: ZMQ_MAX_SOCKETS %d: %w", o.Pools+64, err)
	}
	tag := make([]byte, 4)
	rand.Read(tag)
	pools := make([]*simPool, 0, o.Pools)
	defer func() {
		for _, p := range pools {
			p.sock.Close()
		}
	}()
	for i := range o.Pools {
		id := fmt.Sprintf("sim-%05d-%s", i, hex.EncodeToString(tag))
		s, err := zsock.Dealer([]string{o.Endpoint}, id, false, o.Security)
		if err != nil {
			return fmt.Errorf("simulated pool %d: %w", i, err)
		}
		reg := wire.MustEncode(&wire.Envelope{Body: &wire.Envelope_Register{Register: &wire.Register{
			PoolId: id, Hostname: "sim", Node: fmt.Sprintf("sim-%05d", i), BlockId: -1, Cpus: int32(o.SlotsPerPool),
			Slots: int32(o.SlotsPerPool), Prefetch: int32(o.Prefetch), Build: "simulated"}}})
		pools = append(pools, &simPool{id: id, sock: s, reg: reg})
	}
	shards := o.Shards
	if shards <= 0 {
		shards = min(4, o.Pools)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, shards)
	var wg sync.WaitGroup
	for k := range shards {
		var mine []*simPool
		for i := k; i < len(pools); i += shards {
			mine = append(mine, pools[i])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := serveShard(ctx, mine, o.Heartbeat); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// serveShard registers its pools and serves their sockets from one poller
// until all have been told to shut down or ctx ends.
func serveShard(ctx context.Context, pools []*simPool, heartbeat time.Duration) error {
	poller := zmq.NewPoller()
	for _, p := range pools {
		poller.Add(p.sock, zmq.POLLIN)
		if _, err := p.sock.SendBytes(p.reg, zmq.DONTWAIT); err != nil {
			return fmt.Errorf("simulated pool %s: register: %w", p.id, err)
		}
	}
	beat := wire.MustEncode(&wire.Envelope{Body: &wire.Envelope_Heartbeat{Heartbeat: &wire.Heartbeat{}}})
	lastBeat := time.Now()
	live := len(pools)
	for live > 0 {
		if ctx.Err() != nil {
			return nil
		}
		ready, err := poller.PollAll(min(heartbeat, 200*time.Millisecond))
		if err != nil {
			if errors.Is(zmq.AsErrno(err), zmq.Errno(4)) { // EINTR
				continue
			}
			return fmt.Errorf("simulated pools: poll: %w", err)
		}
		for i, r := range ready {
			if r.Events&zmq.POLLIN == 0 || pools[i].done {
				continue
			}
			if err := pools[i].serve(); err != nil {
				return err
			}
			if pools[i].done {
				live--
			}
		}
		if time.Since(lastBeat) >= heartbeat {
			lastBeat = time.Now()
			for _, p := range pools {
				if !p.done {
					p.sock.SendBytes(beat, zmq.DONTWAIT)
				}
			}
		}
	}
	return nil
}

// serve handles every message waiting on the pool's socket.
func (p *simPool) serve() error {
	for {
		b, err := p.sock.RecvBytes(zmq.DONTWAIT)
		if err != nil {
			return nil // EAGAIN: nothing more
		}
		m, err := wire.Decode(b)
		if err != nil {
			return fmt.Errorf("simulated pool %s: %w", p.id, err)
		}
		switch body := m.Body.(type) {
		case *wire.Envelope_Tasks:
			now := time.Now().UnixMicro()
			rs := make([]*wire.Result, len(body.Tasks.Tasks))
			for i, t := range body.Tasks.Tasks {
				rs[i] = &wire.Result{TaskId: t.Id, Attempt: t.Attempt, StartUnixUs: now, EndUnixUs: now}
				if !t.Noop {
					rs[i].ErrorKind, rs[i].Error = wire.ErrorKind_SPAWN, "a simulated pool runs noop tasks only"
				}
			}
			p.seq++
			out := wire.MustEncode(&wire.Envelope{Body: &wire.Envelope_Results{Results: &wire.Results{Results: rs, Seq: p.seq}}})
			if _, err := p.sock.SendBytes(out, zmq.DONTWAIT); err != nil {
				return fmt.Errorf("simulated pool %s: send results: %w", p.id, err)
			}
		case *wire.Envelope_Reregister:
			p.sock.SendBytes(p.reg, zmq.DONTWAIT)
		case *wire.Envelope_Refuse:
			return fmt.Errorf("simulated pool %s refused: %s", p.id, body.Refuse.Reason)
		case *wire.Envelope_Shutdown, *wire.Envelope_Drain:
			p.done = true
			return nil
		}
		// HeartbeatReply, ResultsAck, CancelTasks: nothing to do (results
		// are answered at once and not kept for a resend).
	}
}
