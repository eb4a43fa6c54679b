package wire

import "google.golang.org/protobuf/encoding/protowire"

// Pre-encoded tasks. The interchange keeps each queued task as the
// protobuf encoding of its Task fields (AppendTaskFields), which is
// smaller than a Task or TaskSpec message and needs no marshalling at
// dispatch: TasksFrame joins such encodings, each with its attempt, into
// the frame of an Envelope holding a Tasks message. The fields follow
// wire.proto (message Task, Envelope.tasks = 20); TestTasksFrame checks
// the frames against proto.Unmarshal.

const (
	fieldEnvelopeVersion = 1
	fieldEnvelopeTasks   = 20
	fieldTasksTasks      = 1
	fieldTaskAttempt     = 8
)

// AppendTaskFields appends the encoding of t's fields but Attempt, zero
// values left out as proto3 does.
func AppendTaskFields(b []byte, t *Task) []byte {
	b = appendVarint(b, 1, t.Id)
	b = appendVarint(b, 2, t.JobId)
	for _, a := range t.Argv {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendString(b, a)
	}
	for _, e := range t.Env {
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendString(b, e)
	}
	b = appendString(b, 5, t.Cwd)
	b = appendVarint(b, 6, uint64(t.TimeoutMs))
	b = appendVarint(b, 7, uint64(t.ArrayIndex))
	if t.Noop {
		b = appendVarint(b, 9, 1)
	}
	b = appendString(b, 10, t.StdoutPath)
	b = appendString(b, 11, t.StderrPath)
	for _, a := range t.ArgvRaw {
		b = protowire.AppendTag(b, 12, protowire.BytesType)
		b = protowire.AppendBytes(b, a)
	}
	for _, e := range t.EnvRaw {
		b = protowire.AppendTag(b, 13, protowire.BytesType)
		b = protowire.AppendBytes(b, e)
	}
	if len(t.CwdRaw) > 0 {
		b = protowire.AppendTag(b, 14, protowire.BytesType)
		b = protowire.AppendBytes(b, t.CwdRaw)
	}
	b = appendVarint(b, 15, uint64(uint32(t.Cores)))
	b = appendVarint(b, 16, uint64(uint32(t.Gpus)))
	b = appendVarint(b, 17, uint64(t.MemBytes))
	b = appendVarint(b, fieldTaskSlots, uint64(uint32(t.Slots)))
	for _, n := range t.MpiNodes {
		b = protowire.AppendTag(b, 19, protowire.BytesType)
		b = protowire.AppendString(b, n)
	}
	b = appendVarint(b, 20, uint64(uint32(t.RanksPerNode)))
	return b
}

// fieldTaskSlots is Task.slots, which the interchange sets per dispatch.
const fieldTaskSlots = 18

// AppendTaskSlots appends Task.slots = n to the encoding of a task's
// fields (AppendTaskFields of a task without it): the whole slots the
// interchange charged the pool for a task of a size. A field that comes
// after the others is read as any other: protobuf allows any order.
func AppendTaskSlots(fields []byte, n int32) []byte {
	return appendVarint(fields, fieldTaskSlots, uint64(uint32(n)))
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// TasksFrameSize is the size of one task in a TasksFrame.
func TasksFrameSize(fields []byte, attempt int32) int {
	n := len(fields) + attemptSize(attempt)
	return protowire.SizeTag(fieldTasksTasks) + protowire.SizeBytes(n)
}

func attemptSize(attempt int32) int {
	if attempt == 0 {
		return 0
	}
	return protowire.SizeTag(fieldTaskAttempt) + protowire.SizeVarint(uint64(attempt))
}

// TasksFrame returns the encoded Envelope (this protocol version, no
// request id) of a Tasks message whose tasks are fields[i] with attempt
// attempts[i].
func TasksFrame(fields [][]byte, attempts []int32) []byte {
	body := 0
	for i, f := range fields {
		body += TasksFrameSize(f, attempts[i])
	}
	b := make([]byte, 0, body+32)
	b = appendVarint(b, fieldEnvelopeVersion, uint64(Version))
	b = protowire.AppendTag(b, fieldEnvelopeTasks, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(body))
	for i, f := range fields {
		b = protowire.AppendTag(b, fieldTasksTasks, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(len(f)+attemptSize(attempts[i])))
		b = append(b, f...)
		b = appendVarint(b, fieldTaskAttempt, uint64(uint32(attempts[i])))
	}
	return b
}
