// Package detect reads the shape of the node a pool runs on: the CPUs the
// process may use, the available memory and the number of GPUs. It is the
// I/O half of pinning (which is pure) and is used by the worker pool.
package detect

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/htex/htex/internal/execx"
	"github.com/htex/htex/pinning"
)

// Environment variables that override detection.
const (
	EnvCores    = "HTEX_CORES"     // an integer N: use N CPUs
	EnvMemoryGB = "HTEX_MEMORY_GB" // GB of memory the pool may use
)

// GPUCommandTimeout bounds each GPU-listing command GPUs runs.
const GPUCommandTimeout = 5 * time.Second

// Node returns the node as the pool sees it.
//
// CPUs: the process's allowed cpuset (sched_getaffinity, which is what Slurm
// and PBS cgroups give the job). HTEX_CORES=N overrides it: the first N CPUs
// of the allowed set, or 0..N-1 when N exceeds the set.
//
// Memory: MemAvailable from /proc/meminfo in GiB rounded to 0.1, unless
// HTEX_MEMORY_GB is set. Errors name the variable and its value.
func Node() (pinning.Node, error) {
	return node(os.Getenv, affinity, func() ([]byte, error) { return os.ReadFile("/proc/meminfo") })
}

// node is Node with its inputs passed in, for tests.
func node(getenv func(string) string, allowed func() ([]int, error), meminfo func() ([]byte, error)) (pinning.Node, error) {
	var n pinning.Node
	cpus, affErr := allowed()
	if v := getenv(EnvCores); v != "" {
		want, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || want < 1 {
			return n, fmt.Errorf("%s %q: want a positive number of CPUs", EnvCores, v)
		}
		if affErr == nil && want <= len(cpus) {
			n.CPUs = cpus[:want]
		} else {
			n.CPUs = make([]int, want)
			for i := range n.CPUs {
				n.CPUs[i] = i
			}
		}
	} else {
		if affErr != nil {
			return n, fmt.Errorf("read the allowed CPUs (set %s to override): %w", EnvCores, affErr)
		}
		n.CPUs = cpus
	}

	if v := getenv(EnvMemoryGB); v != "" {
		gb, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || gb < 0 || math.IsNaN(gb) || math.IsInf(gb, 0) {
			return n, fmt.Errorf("%s %q: want a number of GB >= 0", EnvMemoryGB, v)
		}
		n.MemoryGB = gb
		return n, nil
	}
	data, err := meminfo()
	if err != nil {
		return n, fmt.Errorf("read available memory (set %s to override): %w", EnvMemoryGB, err)
	}
	gb, err := memAvailableGB(data)
	if err != nil {
		return n, fmt.Errorf("/proc/meminfo: %w (set %s to override)", err, EnvMemoryGB)
	}
	n.MemoryGB = gb
	return n, nil
}

// OnlineCPUs returns the CPUs the kernel runs on this node
// (/sys/devices/system/cpu/online), whatever the process's mask; nil when
// that file cannot be read. With Node's CPUs it tells a pool bound to part
// of its node (pinning.LauncherBindHint).
func OnlineCPUs() []int {
	data, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil
	}
	cpus, err := pinning.ParseCPUList(strings.TrimSpace(string(data)))
	if err != nil {
		return nil
	}
	return cpus
}

// AllowedCPUs returns the CPUs of the process's affinity mask, ascending,
// whatever HTEX_CORES says.
func AllowedCPUs() ([]int, error) { return affinity() }

// affinity returns the CPUs of the process's affinity mask, ascending.
func affinity() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	var cpus []int
	for c := range len(set) * 64 {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) == 0 {
		return nil, fmt.Errorf("sched_getaffinity: empty CPU mask")
	}
	return cpus, nil
}

// memAvailableGB reads MemAvailable (in kB) from /proc/meminfo text and
// returns GiB rounded to 0.1.
func memAvailableGB(meminfo []byte) (float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("MemAvailable %q: want \"<n> kB\"", strings.TrimSpace(rest))
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("MemAvailable %q: want \"<n> kB\"", strings.TrimSpace(rest))
		}
		gib := float64(kb) / (1 << 20)
		return math.Round(gib*10) / 10, nil
	}
	return 0, fmt.Errorf("no MemAvailable line")
}

// GPUs returns the number of physical GPUs on the node: the GPU lines of
// `nvidia-smi -L`, else the distinct GPU[i] of `rocm-smi --showid`, else the
// number of devices in an inherited CUDA_VISIBLE_DEVICES, else 0. Each
// command runs with a 5 s timeout; a missing or failing command is skipped.
func GPUs() int {
	return gpus(context.Background(), execx.Exec{Timeout: GPUCommandTimeout}, os.Getenv)
}

// gpus is GPUs with its inputs passed in, for tests.
func gpus(ctx context.Context, r execx.Runner, getenv func(string) string) int {
	if res, err := r.Run(ctx, "", "nvidia-smi", "-L"); err == nil && res.ExitCode == 0 {
		if n := countNvidia(res.Stdout); n > 0 {
			return n
		}
	}
	if res, err := r.Run(ctx, "", "rocm-smi", "--showid"); err == nil && res.ExitCode == 0 {
		if n := countROCm(res.Stdout); n > 0 {
			return n
		}
	}
	return countVisible(getenv("CUDA_VISIBLE_DEVICES"))
}

// countNvidia counts the lines of `nvidia-smi -L` that start with "GPU "
// (MIG devices are indented lines under their GPU and are not counted).
func countNvidia(out string) int {
	n := 0
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "GPU ") {
			n++
		}
	}
	return n
}

// countROCm counts the distinct GPU[i] prefixes in `rocm-smi --showid`
// output, which prints several lines per GPU in recent releases.
func countROCm(out string) int {
	var seen []string
	for line := range strings.Lines(out) {
		i := strings.Index(line, "GPU[")
		if i < 0 {
			continue
		}
		j := strings.IndexByte(line[i:], ']')
		if j < 0 {
			continue
		}
		if id := line[i : i+j+1]; !slices.Contains(seen, id) {
			seen = append(seen, id)
		}
	}
	return len(seen)
}

// countVisible counts the devices in a CUDA_VISIBLE_DEVICES value. CUDA
// stops at the first invalid entry, so do we (NoDevFiles, -1 and empty
// entries end the list).
func countVisible(v string) int {
	if strings.TrimSpace(v) == "" {
		return 0
	}
	n := 0
	for e := range strings.SplitSeq(v, ",") {
		e = strings.TrimSpace(e)
		if e == "" || e == "NoDevFiles" || strings.HasPrefix(e, "-") {
			break
		}
		n++
	}
	return n
}
