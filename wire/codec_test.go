package wire

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestRoundTrip(t *testing.T) {
	in := &Envelope{RequestId: 7, Body: &Envelope_Tasks{Tasks: &Tasks{Tasks: []*Task{
		{Id: 1, JobId: 2, Argv: []string{"echo", "hi"}, Env: []string{"A=B"}, TimeoutMs: 5},
	}}}}
	b, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, out) {
		t.Fatalf("round trip: got %v want %v", out, in)
	}
}

func TestDecodeRejects(t *testing.T) {
	other, _ := proto.Marshal(&Envelope{Version: 99, Body: &Envelope_Stop{Stop: &StopRequest{}}})
	noBody, _ := proto.Marshal(&Envelope{Version: Version})
	tests := []struct {
		name    string
		in      []byte
		version bool
	}{
		{"empty", nil, false},
		{"garbage", []byte{0xff, 0xff, 0xff}, false},
		{"truncated varint", []byte{0x08, 0x80}, false},
		{"other version", other, true},
		{"no body", noBody, false},
		{"oversized", make([]byte, MaxFrame+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.in)
			if err == nil {
				t.Fatal("Decode accepted bad input")
			}
			if got := errors.Is(err, ErrVersion); got != tt.version {
				t.Fatalf("errors.Is(err, ErrVersion) = %v for %v", got, err)
			}
		})
	}
}

func TestVersionErrorNamesBoth(t *testing.T) {
	b, _ := proto.Marshal(&Envelope{Version: 99, Body: &Envelope_Stop{Stop: &StopRequest{}}})
	_, err := Decode(b)
	want := "protocol version mismatch: peer speaks version 99, this htex speaks version 1"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(MustEncode(&Envelope{Body: &Envelope_Heartbeat{Heartbeat: &Heartbeat{Running: []uint64{1, 2}}}}))
	f.Add(MustEncode(&Envelope{Body: &Envelope_Register{Register: &Register{PoolId: "p", Slots: 2}}}))
	f.Add(MustEncode(&Envelope{Body: &Envelope_Submit{Submit: &SubmitRequest{Tasks: []*TaskSpec{{Argv: []string{"true"}}}}}}))
	f.Add([]byte{0x08, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		PeekRequestID(b) // any bytes: no panic
		m, err := Decode(b)
		if err != nil {
			return
		}
		// whatever decodes must re-encode
		again, err := Encode(m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if id, _ := PeekRequestID(again); id != m.RequestId {
			t.Fatalf("PeekRequestID = %d, the message says %d", id, m.RequestId)
		}
	})
}

func BenchmarkCodecTasks(b *testing.B) {
	tasks := make([]*Task, 256)
	for i := range tasks {
		tasks[i] = &Task{Id: uint64(i), JobId: 1, Argv: []string{"/bin/true"}, ArrayIndex: -1}
	}
	m := &Envelope{Body: &Envelope_Tasks{Tasks: &Tasks{Tasks: tasks}}}
	b.ReportAllocs()
	for b.Loop() {
		buf, _ := Encode(m)
		if _, err := Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
}
