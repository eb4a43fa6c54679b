package client

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/htex/htex/wire"
)

// Source makes the tasks of a submission one at a time, so that a client
// never holds a whole large job: an array or a file of 10^6 tasks is made
// once to be checked and once, a request at a time, to be sent. Task i of
// N is At(i); Name(i) names it in an error (the line of a file, the index
// of an array; "task i" when Name is nil).
type Source struct {
	N    int
	At   func(i int) *wire.TaskSpec
	Name func(i int) string

	checked bool // by Check: SubmitFrom need not make every task twice more
}

// Specs is the Source of tasks already made.
func Specs(specs []*wire.TaskSpec) Source {
	return Source{N: len(specs), At: func(i int) *wire.TaskSpec { return specs[i] }}
}

// Check makes every task and refuses the submission at the first that is
// over the size limits, holds a NUL byte (wire.CheckTask) or asks for
// impossible nodes (wire.CheckNodes). SubmitFrom checks a source that has
// not been through Check before it sends anything.
func (s Source) Check() (Source, error) {
	if err := s.check(); err != nil {
		return Source{}, err
	}
	s.checked = true
	return s, nil
}

func (s Source) check() error {
	if s.checked {
		return nil
	}
	for i := range s.N {
		t := s.At(i)
		err := wire.CheckTask(t)
		if err == nil {
			err = wire.CheckNodes(t)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s.name(i), err)
		}
	}
	return nil
}

func (s Source) name(i int) string {
	if s.Name == nil {
		return fmt.Sprintf("task %d", i)
	}
	return s.Name(i)
}

// chunk makes the tasks of the request that starts at task start, into
// buf: at most SubmitChunk tasks and wire.BatchBytes (a larger task goes
// alone), as wire.Cut would cut them.
func (s Source) chunk(start int, buf []*wire.TaskSpec) []*wire.TaskSpec {
	clear(buf)
	buf = buf[:0]
	bytes := 0
	for i := start; i < s.N && len(buf) < SubmitChunk; i++ {
		t := s.At(i)
		n := wire.FieldSize(proto.Size(t))
		if len(buf) > 0 && bytes+n > wire.BatchBytes {
			break
		}
		buf = append(buf, t)
		bytes += n
	}
	return buf
}
