package zsock

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// ErrHandshake is the sentinel of every *HandshakeError: the peer answered
// but the security handshake failed, so no message will ever get through.
var ErrHandshake = errors.New("security handshake failed")

// HandshakeError says how a ZMTP handshake with the peer failed.
type HandshakeError struct {
	Endpoint string
	// Refused is true when the peer's authenticator (ZAP) rejected the key
	// this side presented; false when the handshake itself broke: a wrong
	// server public key, or one side encrypted and the other not.
	Refused bool
	Status  int // ZAP status code when Refused (400: key not admitted)
}

func (e *HandshakeError) Error() string {
	if e.Refused {
		return fmt.Sprintf("%s refused our key (ZAP status %d)", e.Endpoint, e.Status)
	}
	return fmt.Sprintf("the CURVE handshake with %s failed (wrong server public key, or one side encrypted and the other not)", e.Endpoint)
}

// Is makes errors.Is(err, ErrHandshake) true.
func (e *HandshakeError) Is(target error) bool { return target == ErrHandshake }

// Handshakes follows the handshakes of one socket through a libzmq monitor,
// so that a connection that can never carry a message (wrong keys, a
// refused key, plain text against CURVE) is reported instead of looking
// like a silent peer. Like the socket, it belongs to one goroutine.
type Handshakes struct {
	sock      *zmq.Socket
	mon       *zmq.Socket
	failed    *HandshakeError
	firstFail time.Time
	succeeded bool
}

var monSeq atomic.Int64

// watchHandshakes starts monitoring the handshakes of s. Call it before s
// connects, so that no event is missed.
func watchHandshakes(s *zmq.Socket) (*Handshakes, error) {
	ep := fmt.Sprintf("inproc://htex-handshake-%d", monSeq.Add(1))
	events := zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL |
		zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH
	if err := s.Monitor(ep, events); err != nil {
		return nil, fmt.Errorf("monitor handshakes: %w", err)
	}
	mon, err := zmq.NewSocket(zmq.PAIR)
	if err == nil {
		mon.SetLinger(0)
		if err = mon.Connect(ep); err != nil {
			mon.Close()
		}
	}
	if err != nil {
		s.Monitor("", 0)
		return nil, fmt.Errorf("monitor handshakes: %w", err)
	}
	return &Handshakes{sock: s, mon: mon}, nil
}

// read takes every pending event.
func (h *Handshakes) read() {
	for {
		ev, addr, value, err := h.mon.RecvEvent(zmq.DONTWAIT)
		if err != nil {
			return
		}
		switch ev {
		case zmq.EVENT_HANDSHAKE_SUCCEEDED:
			h.succeeded = true
		case zmq.EVENT_HANDSHAKE_FAILED_AUTH:
			h.fail(&HandshakeError{Endpoint: addr, Refused: true, Status: value})
		case zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
			h.fail(&HandshakeError{Endpoint: addr})
		}
	}
}

func (h *Handshakes) fail(e *HandshakeError) {
	if h.failed == nil {
		h.firstFail = time.Now()
	}
	// A refusal says more than a broken handshake: keep it.
	if h.failed == nil || e.Refused || !h.failed.Refused {
		h.failed = e
	}
}

// Succeeded reports whether any handshake of the socket has succeeded.
func (h *Handshakes) Succeeded() bool {
	h.read()
	return h.succeeded
}

// Failed returns the handshake failure seen, if handshakes have failed for
// at least grace and none has succeeded (another address of the same peer
// may still answer within the grace); nil otherwise.
func (h *Handshakes) Failed(grace time.Duration) *HandshakeError {
	h.read()
	if h.succeeded || h.failed == nil || time.Since(h.firstFail) < grace {
		return nil
	}
	return h.failed
}

// Seen returns the handshake failure seen so far, however recent, or nil
// when none failed or one succeeded.
func (h *Handshakes) Seen() *HandshakeError {
	return h.Failed(0)
}

// Close stops following (call it before closing the socket it watches).
func (h *Handshakes) Close() {
	h.sock.Monitor("", 0)
	h.mon.Close()
}
