package wire

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestCut(t *testing.T) {
	tests := []struct {
		name     string
		sizes    []int
		maxItems int
		budget   int
		want     []int
	}{
		{"none", nil, 0, 10, nil},
		{"all fit", []int{1, 2, 3}, 0, 10, []int{3}},
		{"exactly the budget", []int{5, 5}, 0, 10, []int{2}},
		{"one byte over", []int{5, 6}, 0, 10, []int{1, 2}},
		{"item over the budget goes alone", []int{2, 30, 2}, 0, 10, []int{1, 2, 3}},
		{"first item over the budget", []int{30, 1}, 0, 10, []int{1, 2}},
		{"count limit", []int{1, 1, 1, 1, 1}, 2, 100, []int{2, 4, 5}},
		{"count and bytes", []int{4, 4, 4, 1, 1, 1}, 3, 8, []int{2, 5, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Cut(len(tt.sizes), func(i int) int { return tt.sizes[i] }, tt.maxItems, tt.budget)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Cut(%v, max %d, budget %d) = %v, want %v", tt.sizes, tt.maxItems, tt.budget, got, tt.want)
			}
		})
	}
}

// TestCutInvariants: every item is in exactly one batch, in order, and a
// batch over the budget or the count holds one item.
func TestCutInvariants(t *testing.T) {
	for seed := range 200 {
		n := seed % 37
		sizes := make([]int, n)
		for i := range sizes {
			sizes[i] = (seed*31 + i*17) % 23
		}
		budget, maxItems := 1+seed%29, seed%5
		ends := Cut(n, func(i int) int { return sizes[i] }, maxItems, budget)
		start := 0
		for _, end := range ends {
			if end <= start {
				t.Fatalf("seed %d: empty or backward batch %v", seed, ends)
			}
			sum := 0
			for _, s := range sizes[start:end] {
				sum += s
			}
			if end-start > 1 && (sum > budget || (maxItems > 0 && end-start > maxItems)) {
				t.Fatalf("seed %d: batch %d..%d of %d bytes over budget %d or count %d", seed, start, end, sum, budget, maxItems)
			}
			start = end
		}
		if start != n {
			t.Fatalf("seed %d: batches end at %d of %d items", seed, start, n)
		}
	}
}

func TestArgEnvBytes(t *testing.T) {
	tests := []struct {
		name      string
		argv, env []string
		want      int
	}{
		{"empty argv counts one pointer", nil, nil, 8},
		{"one arg", []string{"true"}, nil, 8 + 5},
		{"argv and env", []string{"sh", "-c", "x"}, []string{"A=1"}, 4*8 + 3 + 3 + 2 + 4},
	}
	for _, tt := range tests {
		if got := ArgEnvBytes(tt.argv, tt.env); got != tt.want {
			t.Errorf("%s: ArgEnvBytes = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestCheckTaskSizes(t *testing.T) {
	big := strings.Repeat("x", MaxArgEnvBytes)
	justFits := strings.Repeat("x", MaxArgEnvBytes-ArgEnvBytes([]string{"sh", "-c", ""}, nil))
	long := "/" + strings.Repeat("d", MaxPathBytes)
	tests := []struct {
		name string
		spec *TaskSpec
		want string // "" = accepted
	}{
		{"small", &TaskSpec{Argv: []string{"true"}, Cwd: "/tmp"}, ""},
		{"argv at the limit", &TaskSpec{Argv: []string{"sh", "-c", justFits}}, ""},
		{"argv one byte over", &TaskSpec{Argv: []string{"sh", "-c", justFits + "x"}}, "6291457 bytes, over the 6291456-byte limit"},
		{"env over", &TaskSpec{Argv: []string{"true"}, Env: []string{"X=" + big}}, "over the 6291456-byte limit"},
		{"cwd over", &TaskSpec{Argv: []string{"true"}, Cwd: long}, "cwd of 4096 bytes is over the 4095-byte limit"},
		{"stdout over", &TaskSpec{Argv: []string{"true"}, StdoutPath: long}, "stdout path of 4096 bytes"},
		{"stderr over", &TaskSpec{Argv: []string{"true"}, StderrPath: long}, "stderr path of 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckTaskSizes(tt.spec)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrTooLarge) {
				t.Fatalf("got %v, want an ErrTooLarge containing %q", err, tt.want)
			}
		})
	}
}

// TestLargestTaskFits: a task at every limit, with the largest tails and
// error, still fits in one frame as a Task, a TaskSpec and a TaskResult.
func TestLargestTaskFits(t *testing.T) {
	arg := strings.Repeat("a", MaxArgEnvBytes-ArgEnvBytes([]string{""}, nil))
	path := strings.Repeat("p", MaxPathBytes)
	tail := make([]byte, MaxTailBytes)
	errText := strings.Repeat("e", MaxErrorBytes)
	for _, m := range []*Envelope{
		{Body: &Envelope_Tasks{Tasks: &Tasks{Tasks: []*Task{{Argv: []string{arg}, Cwd: path, StdoutPath: path, StderrPath: path}}}}},
		{Body: &Envelope_Submit{Submit: &SubmitRequest{Tasks: []*TaskSpec{{Argv: []string{arg}, Cwd: path, StdoutPath: path, StderrPath: path}}}}},
		{Body: &Envelope_Results{Results: &Results{Results: []*Result{{Stdout: tail, Stderr: tail, Error: errText}}}}},
		{Body: &Envelope_ResultsReply{ResultsReply: &ResultsReply{Results: []*TaskResult{{Argv: []string{arg}, Stdout: tail, Stderr: tail, Error: errText}}}}},
	} {
		b, err := Encode(m)
		if err != nil {
			t.Fatalf("%T: %v", m.Body, err)
		}
		if len(b)+BatchBytes > MaxFrame {
			t.Errorf("%T: %d bytes leave no room for a batch of %d beside it in %d", m.Body, len(b), BatchBytes, MaxFrame)
		}
	}
}

func TestEncodeRefusesOversize(t *testing.T) {
	m := &Envelope{Body: &Envelope_Results{Results: &Results{Results: []*Result{{Stdout: make([]byte, MaxFrame)}}}}}
	_, err := Encode(m)
	var fe *FrameSizeError
	if !errors.As(err, &fe) || !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "exceeds the 67108864-byte limit") {
		t.Fatalf("got %v, want a FrameSizeError", err)
	}
}

func TestCheckTailBytes(t *testing.T) {
	for _, tt := range []struct {
		n  int
		ok bool
	}{{0, true}, {65536, true}, {MaxTailBytes, true}, {MaxTailBytes + 1, false}, {70000000, false}, {-1, false}} {
		if err := CheckTailBytes(tt.n); (err == nil) != tt.ok {
			t.Errorf("CheckTailBytes(%d) = %v, want ok=%v", tt.n, err, tt.ok)
		}
	}
}

func TestPeekRequestID(t *testing.T) {
	b := MustEncode(&Envelope{RequestId: 300, Body: &Envelope_Status{Status: &StatusRequest{}}})
	if id, ok := PeekRequestID(b); !ok || id != 300 {
		t.Fatalf("PeekRequestID = %d, %v; want 300", id, ok)
	}
	// a body that does not parse after the id: still found
	bad := append(append([]byte{}, b[:5]...), 0xff, 0xff)
	if id, ok := PeekRequestID(bad); !ok || id != 300 {
		t.Fatalf("malformed tail: PeekRequestID = %d, %v; want 300", id, ok)
	}
	if _, ok := PeekRequestID([]byte{0x08, 0x01}); ok {
		t.Fatal("found a request id in a frame without one")
	}
}

func TestClip(t *testing.T) {
	if got := Clip("short", 10); got != "short" {
		t.Errorf("Clip kept %q", got)
	}
	got := Clip(strings.Repeat("x", 100), 20)
	if len(got) != 20 || !strings.HasSuffix(got, "(cut)") {
		t.Errorf("Clip = %q (%d bytes)", got, len(got))
	}
}

func TestCheckTaskNUL(t *testing.T) {
	for _, tt := range []struct {
		name string
		spec *TaskSpec
		want string
	}{
		{"ok", &TaskSpec{Argv: []string{"echo", "caf\xe9"}}, ""},
		{"argv", &TaskSpec{Argv: []string{"echo", "a\x00b"}}, "argument 1 holds a NUL byte"},
		{"env", &TaskSpec{Argv: []string{"true"}, Env: []string{"X=\x00"}}, "holds a NUL byte"},
		{"cwd", &TaskSpec{Argv: []string{"true"}, Cwd: "/t\x00"}, "cwd"},
		{"sizes first", &TaskSpec{Argv: []string{strings.Repeat("x", MaxArgEnvBytes)}}, "over the"},
	} {
		err := CheckTask(tt.spec)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}
