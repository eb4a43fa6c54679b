package client

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/htex/htex/wire"
)

// Size is what a task asks for beyond one slot of a pool: CPUs, GPUs and
// memory (accounted when placing the task, not enforced). The zero Size
// is a task of one slot, as a task without a size has always been. A pool
// charges a sized task the whole slots that cover it (docs/task-sizes.md).
type Size struct {
	Cores    int32
	GPUs     int32
	MemBytes int64
}

// ParseSize reads the texts of submit's --cores, --gpus and --mem ("" =
// not given). Each given value must be a positive whole number (cores,
// gpus) or a memory size such as 512M, 4G, 1.5G or a number of bytes
// (wire.ParseMem); the error names the flag and the value.
func ParseSize(cores, gpus, mem string) (Size, error) {
	var z Size
	var err error
	if z.Cores, err = parseCount("--cores", cores, wire.MaxCores); err != nil {
		return Size{}, err
	}
	if z.GPUs, err = parseCount("--gpus", gpus, wire.MaxGPUs); err != nil {
		return Size{}, err
	}
	if mem != "" {
		if z.MemBytes, err = wire.ParseMem(mem); err != nil {
			return Size{}, fmt.Errorf("--mem %w", err)
		}
	}
	return z, nil
}

func parseCount(flag, v string, limit int) (int32, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	switch {
	case err != nil && strings.Contains(err.Error(), "out of range"):
		return 0, fmt.Errorf("%s %q: over the limit of %d", flag, v, limit)
	case err != nil:
		return 0, fmt.Errorf("%s %q: want a whole number >= 1", flag, v)
	case n < 1:
		return 0, fmt.Errorf("%s %d: must be at least 1 (leave the flag out for a task of one slot)", flag, n)
	case n > int64(limit):
		return 0, fmt.Errorf("%s %d: over the limit of %d", flag, n, limit)
	}
	return int32(n), nil
}

// Apply sets the size on task specs.
func (z Size) Apply(specs ...*wire.TaskSpec) {
	for _, s := range specs {
		s.Cores, s.Gpus, s.MemBytes = z.Cores, z.GPUs, z.MemBytes
	}
}

// String writes the size as submit's flags ("--cores 4 --mem 4G"; "" for
// the zero Size).
func (z Size) String() string { return wire.SizeFlags(z.Cores, z.GPUs, z.MemBytes) }
