// Package wire owns the messages exchanged by clients, the interchange and
// worker pools: the protobuf schema (wire.proto), the protocol version, and
// a decoder that rejects malformed, oversized or foreign-version frames with
// an error and never panics. It does no I/O.
package wire

//go:generate protoc --go_out=. --go_opt=paths=source_relative wire.proto

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Version is the protocol version. Bump it on any incompatible schema change.
const Version uint32 = 1

// MaxFrame is the largest frame the decoder accepts (64 MiB).
const MaxFrame = 64 << 20

// ErrVersion reports a peer of another protocol version.
var ErrVersion = errors.New("protocol version mismatch")

// VersionError names both versions.
type VersionError struct{ Theirs, Ours uint32 }

func (e *VersionError) Error() string {
	return fmt.Sprintf("protocol version mismatch: peer speaks version %d, this htex speaks version %d", e.Theirs, e.Ours)
}

// Is makes errors.Is(err, ErrVersion) true.
func (e *VersionError) Is(target error) bool { return target == ErrVersion }

var marshal = proto.MarshalOptions{}

// Encode stamps the protocol version and marshals. A frame over MaxFrame
// is an error (*FrameSizeError): no peer would take it, so the sender
// learns it here rather than by silence.
func Encode(m *Envelope) ([]byte, error) {
	m.Version = Version
	b, err := marshal.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", m.Body, err)
	}
	if len(b) > MaxFrame {
		return nil, &FrameSizeError{What: fmt.Sprintf("encode %T", m.Body), Bytes: len(b)}
	}
	return b, nil
}

// MustEncode is Encode for messages built in code, which cannot fail to marshal.
func MustEncode(m *Envelope) []byte {
	b, err := Encode(m)
	if err != nil {
		panic(err)
	}
	return b
}

// PeekVersion reads field 1 without decoding the rest, so that a frame of
// any version can be answered with a clear refusal.
func PeekVersion(b []byte) (uint32, bool) {
	v, ok := peekVarint(b, 1)
	return uint32(v), ok
}

// PeekRequestID reads field 2 (request_id) of a frame that may not decode,
// so that a client's malformed request is answered rather than dropped.
func PeekRequestID(b []byte) (uint64, bool) {
	return peekVarint(b, 2)
}

// peekVarint returns the first varint field number want of a protobuf
// message without decoding the rest.
func peekVarint(b []byte, want protowire.Number) (uint64, bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, false
		}
		b = b[n:]
		if num == want && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return 0, false
			}
			return v, true
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return 0, false
		}
		b = b[n:]
	}
	return 0, false
}

// Decode unmarshals one frame. It fails on oversized input, malformed
// protobuf, a missing body, or another protocol version (*VersionError).
func Decode(b []byte) (*Envelope, error) {
	if len(b) > MaxFrame {
		return nil, &FrameSizeError{What: "decode", Bytes: len(b)}
	}
	if v, ok := PeekVersion(b); !ok {
		return nil, fmt.Errorf("decode: frame without a protocol version")
	} else if v != Version {
		return nil, &VersionError{Theirs: v, Ours: Version}
	}
	m := &Envelope{}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if m.Body == nil {
		return nil, fmt.Errorf("decode: message without a body")
	}
	return m, nil
}
