package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"google.golang.org/protobuf/proto"

	"github.com/htex/htex/internal/testenv"
	"github.com/htex/htex/rundir"
	"github.com/htex/htex/wire"
)

const plainConfig = `
[executor]
max_workers_per_node = 2
cores_per_worker = 0.01
heartbeat_period = 1
heartbeat_threshold = 5
encrypted = false
address = "127.0.0.1"
[provider]
kind = "local"
`

// rawExchange connects a plain DEALER to port, sends one frame and returns
// the first frame that comes back.
func rawExchange(t *testing.T, port int, identity string, frame []byte) []byte {
	t.Helper()
	s, err := zmq.NewSocket(zmq.DEALER)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetLinger(0)
	if identity != "" {
		s.SetIdentity(identity)
	}
	if err := s.Connect("tcp://127.0.0.1:" + strconv.Itoa(port)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendBytes(frame, 0); err != nil {
		t.Fatal(err)
	}
	p := zmq.NewPoller()
	p.Add(s, zmq.POLLIN)
	polled, err := p.Poll(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(polled) == 0 {
		t.Fatalf("no answer on port %d within 30 s", port)
	}
	b, err := s.RecvBytes(0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProtocolVersionRefused: a client or a pool of another protocol
// version gets an answer naming both versions, and the daemon goes on.
func TestProtocolVersionRefused(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, plainConfig)
	conn, err := rundir.ReadConnection(d.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	if conn.Encrypted {
		t.Fatal("encrypted = false was not applied")
	}
	wantBoth := func(what, msg string) {
		t.Helper()
		if !strings.Contains(msg, "version 99") || !strings.Contains(msg, "version "+strconv.Itoa(int(wire.Version))) {
			t.Errorf("%s: %q does not name both versions (99 and %d)", what, msg, wire.Version)
		}
	}

	frame, _ := proto.Marshal(&wire.Envelope{Version: 99, RequestId: 7, Body: &wire.Envelope_Status{Status: &wire.StatusRequest{}}})
	m, err := wire.Decode(rawExchange(t, conn.ClientPort, "", frame))
	if err != nil {
		t.Fatalf("client channel: the daemon's answer does not decode: %v", err)
	}
	e, ok := m.Body.(*wire.Envelope_Error)
	if !ok {
		t.Fatalf("client channel: got %T, want an ErrorReply", m.Body)
	}
	wantBoth("client channel ErrorReply", e.Error.Message)

	frame, _ = proto.Marshal(&wire.Envelope{Version: 99, Body: &wire.Envelope_Register{Register: &wire.Register{
		PoolId: "foreign-pool", Hostname: "elsewhere", Node: "elsewhere", BlockId: 0, Slots: 4}}})
	m, err = wire.Decode(rawExchange(t, conn.WorkerPort, "foreign-pool", frame))
	if err != nil {
		t.Fatalf("worker channel: the daemon's answer does not decode: %v", err)
	}
	r, ok := m.Body.(*wire.Envelope_Refuse)
	if !ok {
		t.Fatalf("worker channel: got %T, want a Refuse", m.Body)
	}
	wantBoth("worker channel Refuse", r.Refuse.Reason)

	// The refused pool did not join, and the daemon still serves.
	out := d.MustRun("status", "--json")
	if strings.Contains(out, "foreign-pool") {
		t.Errorf("a pool of another version was registered:\n%s", out)
	}
	job := d.Submit("--", "true")
	if code := d.WaitJob(job); code != 0 {
		t.Errorf("after the refusals, a task: wait exit %d", code)
	}
}
