package wire

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// The size limits of htex's messages. Every message that carries a number
// of items (tasks, results, result rows) is cut into messages of at most
// BatchBytes; one item alone always fits in MaxFrame because each of its
// parts is bounded here and checked where it enters (submit, config).
// docs/limits.md lists them all for users.
const (
	// TransportSlack is added to MaxFrame for ZMQ_MAXMSGSIZE: under CURVE
	// the transport sees each frame wrapped in a MESSAGE command (name,
	// nonce, MAC, flags: 33 bytes), and the decoder enforces MaxFrame
	// exactly after it.
	TransportSlack = 64 << 10

	// BatchBytes is the budget of one message of many items. A quarter
	// of MaxFrame: one item of the largest size still fits beside it.
	BatchBytes = MaxFrame / 4

	// MaxArgEnvBytes bounds a task's argv and env together, counted as
	// execve(2) counts them: each string with its NUL, plus one pointer
	// per string. Linux refuses more than 3/4 of _STK_LIM (8 MiB), i.e.
	// 6 MiB, whatever the stack limit (fs/exec.c, since Linux 4.13,
	// commit da029c11e6b1 "exec: Limit arg stack to at most 75% of
	// _STK_LIM"); with the default 8 MiB stack limit a node allows a
	// quarter of it, 2 MiB (execve(2), "Limits on size of arguments and
	// environment"; https://mina86.com/2021/the-real-arg-max-part-1/).
	// A task above this bound could never start on any Linux node.
	MaxArgEnvBytes = 6 << 20

	// MaxPathBytes bounds cwd and the --stdout/--stderr paths: Linux's
	// PATH_MAX is 4096 bytes with the terminating NUL (limits.h).
	MaxPathBytes = 4095

	// MaxTailBytes bounds executor.output_tail_bytes: a result carries
	// two tails, and with the command line it must fit in one frame.
	MaxTailBytes = 8 << 20

	// MaxErrorBytes bounds the error text of one result.
	MaxErrorBytes = 4 << 10

	// MaxTasksPerSubmit bounds the tasks of one SubmitRequest.
	MaxTasksPerSubmit = 100000

	// MaxRetries bounds a task's retries (submit --retries, a spec's
	// retries, executor.retries): the daemon keeps a queued task's
	// retries and attempts in 2 bytes each. A task retried ten thousand
	// times has a problem that retrying does not solve.
	MaxRetries = 10000

	// MaxTimeoutMs bounds a task's time limit: what a Go duration holds
	// (about 292 years), so that the pool's deadline cannot wrap around.
	MaxTimeoutMs = math.MaxInt64 / int64(time.Millisecond)
)

// ErrTooLarge reports a message or an item over one of the limits.
var ErrTooLarge = errors.New("over the size limit")

// FrameSizeError is a frame over MaxFrame.
type FrameSizeError struct {
	What  string
	Bytes int
}

func (e *FrameSizeError) Error() string {
	return fmt.Sprintf("%s: frame of %d bytes exceeds the %d-byte limit", e.What, e.Bytes, MaxFrame)
}

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *FrameSizeError) Is(target error) bool { return target == ErrTooLarge }

// ArgEnvBytes is what argv and env cost against the kernel's limit: every
// string with its NUL, and a pointer (8 bytes) per string.
func ArgEnvBytes(argv, env []string) int {
	n := 8 * (max(len(argv), 1) + len(env))
	for _, s := range argv {
		n += len(s) + 1
	}
	for _, s := range env {
		n += len(s) + 1
	}
	return n
}

// CheckTaskSizes refuses a task spec that could never be sent or started:
// argv+env over MaxArgEnvBytes, or a path over MaxPathBytes. The error
// names the field, its size and the limit.
func CheckTaskSizes(t *TaskSpec) error {
	if n := ArgEnvBytes(t.Args(), t.Envs()); n > MaxArgEnvBytes {
		return fmt.Errorf("argv and env take %d bytes, over the %d-byte limit (Linux refuses more than 6 MiB to execve, and with the usual 8 MiB stack limit 2 MiB; pass large inputs in a file): %w",
			n, MaxArgEnvBytes, ErrTooLarge)
	}
	for _, f := range []struct{ name, v string }{{"cwd", t.Dir()}, {"stdout path", t.StdoutPath}, {"stderr path", t.StderrPath}} {
		if len(f.v) > MaxPathBytes {
			return fmt.Errorf("%s of %d bytes is over the %d-byte limit (PATH_MAX): %w", f.name, len(f.v), MaxPathBytes, ErrTooLarge)
		}
	}
	return nil
}

// CheckTask is CheckTaskSizes, refuses a NUL byte in argv, env or cwd
// (they are C strings for execve(2), which cannot carry one), and checks
// the task's size (CheckSize).
func CheckTask(t *TaskSpec) error {
	if err := CheckTaskSizes(t); err != nil {
		return err
	}
	for i, a := range t.Args() {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("argument %d holds a NUL byte, which no command line can carry", i)
		}
	}
	for _, e := range t.Envs() {
		if strings.IndexByte(e, 0) >= 0 {
			return fmt.Errorf("env %q holds a NUL byte, which no environment can carry", e)
		}
	}
	if strings.IndexByte(t.Dir(), 0) >= 0 {
		return fmt.Errorf("cwd %q holds a NUL byte, which no path can carry", t.Dir())
	}
	return CheckSize(t.Cores, t.Gpus, t.MemBytes)
}

// CheckRetries checks a retry budget (MaxRetries).
func CheckRetries(n int) error {
	if n < 0 || n > MaxRetries {
		return fmt.Errorf("must be in [0, %d]", MaxRetries)
	}
	return nil
}

// CheckTailBytes checks executor.output_tail_bytes.
func CheckTailBytes(n int) error {
	if n < 0 || n > MaxTailBytes {
		return fmt.Errorf("must be in [0, %d] (8 MiB: a result carries two tails in one message; use submit --stdout/--stderr PATH to keep whole outputs)", MaxTailBytes)
	}
	return nil
}

// FieldSize is what an item of size n costs inside a repeated field: its
// tag, its length prefix and itself.
func FieldSize(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

// Cut splits n items into consecutive batches of at most maxItems items
// (0 = no count limit) whose sizes add up to at most budget bytes; an item
// larger than the budget goes alone. It returns the end index of each
// batch, so batch i is items[ends[i-1]:ends[i]].
func Cut(n int, size func(i int) int, maxItems, budget int) []int {
	var ends []int
	count, bytes := 0, 0
	for i := range n {
		s := size(i)
		if count > 0 && (bytes+s > budget || (maxItems > 0 && count == maxItems)) {
			ends = append(ends, i)
			count, bytes = 0, 0
		}
		count++
		bytes += s
	}
	if count > 0 {
		ends = append(ends, n)
	}
	return ends
}

// Clip returns s cut to at most n bytes, marking the cut.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = " ... (cut)"
	return s[:max(n-len(mark), 0)] + mark
}
