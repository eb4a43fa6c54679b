// Package zsock builds the ZeroMQ sockets of htex with the run's security
// settings: ROUTER servers with CURVE and a ZAP domain, DEALER clients that
// present their key pair. It owns no goroutines except libzmq's ZAP handler.
package zsock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/htex/htex/wire"
)

// ZAP domains: the interchange admits client keys only on the client
// channel and pool keys only on the worker channel.
const (
	DomainClient = "htex-client"
	DomainPool   = "htex-pool"
)

var authOnce sync.Once
var authErr error

// StartAuth starts the process-wide ZAP handler and admits exactly the
// given public key in each domain.
func StartAuth(clientPublic, poolPublic string) error {
	authOnce.Do(func() {
		authErr = zmq.AuthStart()
	})
	if authErr != nil {
		return fmt.Errorf("start ZAP handler: %w", authErr)
	}
	zmq.AuthCurveRemoveAll(DomainClient)
	zmq.AuthCurveRemoveAll(DomainPool)
	zmq.AuthCurveAdd(DomainClient, clientPublic)
	zmq.AuthCurveAdd(DomainPool, poolPublic)
	return nil
}

// ServerSecurity is how a ROUTER authenticates its peers; nil = plain text.
type ServerSecurity struct {
	Secret string // server secret key (Z85)
	Domain string // ZAP domain
}

// ClientSecurity is how a DEALER authenticates; nil = plain text.
type ClientSecurity struct {
	ServerPublic   string
	Public, Secret string
}

// Router binds a ROUTER on port of every host (port 0 = a random free
// port, or the first free port of portRange when given: the same on every
// host) and returns the bound port. "*" is every interface.
func Router(hosts []string, port int, portRange [2]int, sec *ServerSecurity) (*zmq.Socket, int, error) {
	if len(hosts) == 0 {
		return nil, 0, errors.New("no address to bind")
	}
	s, err := zmq.NewSocket(zmq.ROUTER)
	if err != nil {
		return nil, 0, err
	}
	s.SetLinger(0)
	s.SetSndhwm(0)
	s.SetRcvhwm(0)
	s.SetIpv6(true)
	if err := limitInbound(s); err != nil {
		s.Close()
		return nil, 0, err
	}
	if sec != nil {
		if err := s.ServerAuthCurve(sec.Domain, sec.Secret); err != nil {
			s.Close()
			return nil, 0, fmt.Errorf("enable CURVE: %w", err)
		}
	}
	// bindAll binds every host on p, or none.
	bindAll := func(p int) error {
		for i, h := range hosts {
			if err := s.Bind(Endpoint(h, p)); err != nil {
				for _, b := range hosts[:i] {
					s.Unbind(Endpoint(b, p))
				}
				return fmt.Errorf("bind %s: %w", Endpoint(h, p), err)
			}
		}
		return nil
	}
	switch {
	case port > 0:
		if err := bindAll(port); err != nil {
			s.Close()
			return nil, 0, err
		}
		return s, port, nil
	case portRange[1] > 0:
		for p := portRange[0]; p <= portRange[1]; p++ {
			if bindAll(p) == nil {
				return s, p, nil
			}
		}
		s.Close()
		return nil, 0, fmt.Errorf("no port in range %d-%d is free on %s", portRange[0], portRange[1], strings.Join(hosts, ", "))
	default:
		p, err := bindRandom(s, hosts)
		if err != nil {
			s.Close()
			return nil, 0, err
		}
		return s, p, nil
	}
}

// bindRandom binds the first host on a random free port, then the others
// on that port, trying a few ports when another host has it taken.
func bindRandom(s *zmq.Socket, hosts []string) (int, error) {
	var last error
	for range 8 {
		if err := s.Bind("tcp://" + bracket(hosts[0]) + ":*"); err != nil {
			return 0, fmt.Errorf("bind %s: %w", hosts[0], err)
		}
		ep, err := s.GetLastEndpoint()
		if err != nil {
			return 0, err
		}
		_, ps, err := net.SplitHostPort(strings.TrimPrefix(ep, "tcp://"))
		if err != nil {
			return 0, fmt.Errorf("parse endpoint %q: %w", ep, err)
		}
		p, _ := strconv.Atoi(ps)
		last = nil
		for i, h := range hosts[1:] {
			if err := s.Bind(Endpoint(h, p)); err != nil {
				last = fmt.Errorf("bind %s: %w", Endpoint(h, p), err)
				for _, b := range hosts[:i+1] {
					s.Unbind(Endpoint(b, p))
				}
				break
			}
		}
		if last == nil {
			return p, nil
		}
	}
	return 0, last
}

func bracket(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// Dealer connects a DEALER to each endpoint. identity "" lets the peer
// assign one. With immediate, messages are queued only on completed
// connections, so a DEALER connected to several addresses of one daemon
// talks over the first that answers.
func Dealer(endpoints []string, identity string, immediate bool, sec *ClientSecurity) (*zmq.Socket, error) {
	s, _, err := dealer(endpoints, identity, immediate, sec, false)
	return s, err
}

// WatchedDealer is Dealer with its handshakes followed from before the
// first connect, so that wrong keys show as a *HandshakeError rather than
// as silence. Close the Handshakes before the socket.
func WatchedDealer(endpoints []string, identity string, immediate bool, sec *ClientSecurity) (*zmq.Socket, *Handshakes, error) {
	return dealer(endpoints, identity, immediate, sec, true)
}

func dealer(endpoints []string, identity string, immediate bool, sec *ClientSecurity, watch bool) (*zmq.Socket, *Handshakes, error) {
	if len(endpoints) == 0 {
		return nil, nil, errors.New("no address to connect to")
	}
	s, err := zmq.NewSocket(zmq.DEALER)
	if err != nil {
		return nil, nil, err
	}
	s.SetLinger(0)
	s.SetSndhwm(0)
	s.SetRcvhwm(0)
	s.SetIpv6(true)
	if err := limitInbound(s); err != nil {
		s.Close()
		return nil, nil, err
	}
	s.SetReconnectIvl(100 * time.Millisecond)
	s.SetReconnectIvlMax(2 * time.Second)
	if immediate {
		s.SetImmediate(true)
	}
	if identity != "" {
		s.SetIdentity(identity)
	}
	if sec != nil {
		if err := s.ClientAuthCurve(sec.ServerPublic, sec.Public, sec.Secret); err != nil {
			s.Close()
			return nil, nil, fmt.Errorf("enable CURVE: %w", err)
		}
	}
	var hs *Handshakes
	if watch {
		if hs, err = watchHandshakes(s); err != nil {
			s.Close()
			return nil, nil, err
		}
	}
	for _, ep := range endpoints {
		if err := s.Connect(ep); err != nil {
			if hs != nil {
				hs.Close()
			}
			s.Close()
			return nil, nil, fmt.Errorf("connect %s: %w", ep, err)
		}
	}
	return s, hs, nil
}

// MaxInbound is the ZMQ_MAXMSGSIZE of every socket: libzmq reads a frame's
// size first and disconnects a peer that announces more, before any of
// the frame is allocated ("If a peer sends a message larger than
// ZMQ_MAXMSGSIZE it is disconnected", zmq_setsockopt(3),
// http://api.zeromq.org/4-3:zmq-setsockopt). The decoder then enforces
// wire.MaxFrame exactly.
const MaxInbound = wire.MaxFrame + wire.TransportSlack

func limitInbound(s *zmq.Socket) error {
	if err := s.SetMaxmsgsize(MaxInbound); err != nil {
		return fmt.Errorf("set ZMQ_MAXMSGSIZE: %w", err)
	}
	return nil
}

// Endpoint formats a tcp endpoint, bracketing IPv6 addresses.
func Endpoint(host string, port int) string {
	return "tcp://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// Addresses lists this host's non-loopback interface addresses, then the
// loopback address, without any network call to the outside world.
func Addresses() []string {
	var out []string
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLinkLocalUnicast() || ipn.IP.IsLoopback() {
				continue
			}
			out = append(out, ipn.IP.String())
		}
	}
	return append(out, "127.0.0.1")
}

// NumericHosts returns hosts with every name replaced by its addresses,
// looked up by Go's resolver (/etc/hosts and DNS). libzmq is only ever
// given numeric addresses: in the static htexctl, glibc's resolver cannot
// load the NSS modules a name lookup would need, and a lookup inside
// libzmq would fail without saying why.
func NumericHosts(ctx context.Context, hosts []string) ([]string, error) {
	var out []string
	for _, h := range hosts {
		if h == "*" || net.ParseIP(h) != nil {
			out = append(out, h)
			continue
		}
		ips, err := net.DefaultResolver.LookupIPAddr(ctx, h)
		if err != nil {
			return nil, fmt.Errorf("resolve host %q: %w", h, err)
		}
		for _, ip := range ips {
			if ip.Zone == "" {
				out = append(out, ip.IP.String())
			}
		}
	}
	if len(hosts) > 0 && len(out) == 0 {
		return nil, fmt.Errorf("no usable address for %q", strings.Join(hosts, ","))
	}
	return out, nil
}

// Flush waits, at most d, until messages still queued on closed sockets
// with a linger have left: a process that exits at once drops them. Every
// socket must be closed (or be closed within d).
func Flush(d time.Duration) {
	done := make(chan struct{})
	go func() { zmq.Term(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}
