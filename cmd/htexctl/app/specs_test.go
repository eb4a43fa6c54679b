package app

import (
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/htex/htex/client"
	"github.com/htex/htex/wire"
)

// submitSpecs runs `htexctl submit ARGS...` as far as the tasks it would
// send, and makes every one of them.
func submitSpecs(args ...string) ([]*wire.TaskSpec, error) {
	var specs []*wire.TaskSpec
	cmd := submitCommand()
	cmd.Action = func(c *cli.Context) error {
		src, err := buildSource(c)
		if err != nil {
			return err
		}
		specs, err = allSpecs(src)
		return err
	}
	a := &cli.App{Name: "htexctl", Commands: []*cli.Command{cmd}, DisableSliceFlagSeparator: true}
	a.Writer, a.ErrWriter = &strings.Builder{}, &strings.Builder{}
	err := a.Run(append([]string{"htexctl", "submit"}, args...))
	return specs, err
}

// allSpecs checks a source as submit does and makes all its tasks.
func allSpecs(src client.Source) ([]*wire.TaskSpec, error) {
	if _, err := src.Check(); err != nil {
		return nil, err
	}
	specs := make([]*wire.TaskSpec, src.N)
	for i := range specs {
		specs[i] = src.At(i)
	}
	return specs, nil
}

// TestArraySource: task i of --array A-B has index A+i in its argv (under
// sh -c with --shell), and a bad index is named.
func TestArraySource(t *testing.T) {
	mk := func(argv []string, idx int64) *wire.TaskSpec {
		s := &wire.TaskSpec{ArrayIndex: idx}
		s.SetArgs(argv)
		return s
	}
	src := arraySource([]string{"run", "--seed", "{}", "in{}.h5"}, 7, 9, false, mk)
	specs, err := allSpecs(src)
	if err != nil || len(specs) != 3 {
		t.Fatalf("%d specs, %v", len(specs), err)
	}
	if got := specs[2].Args(); !slices.Equal(got, []string{"run", "--seed", "9", "in9.h5"}) || specs[2].ArrayIndex != 9 {
		t.Errorf("task 2: %q index %d", got, specs[2].ArrayIndex)
	}
	sh := arraySource([]string{"echo", "{}"}, 0, 0, true, mk).At(0)
	if got := sh.Args(); !slices.Equal(got, []string{"/bin/sh", "-c", "echo 0"}) {
		t.Errorf("--shell: %q", got)
	}
	_, err = arraySource([]string{"x\x00{}"}, 5, 5, false, mk).Check()
	if err == nil || !strings.Contains(err.Error(), "--array index 5: argument 0 holds a NUL byte") {
		t.Errorf("NUL: %v", err)
	}
}
