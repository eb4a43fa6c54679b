package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/htex/htex/wire"
)

// Duration is a time.Duration written in TOML as a number of seconds
// (30, 0.5) or a Go duration string ("30s", "2m").
type Duration time.Duration

// maxDurationSeconds is the most seconds a time.Duration holds (about 292
// years): a larger number would wrap around into a wrong duration.
const maxDurationSeconds = int64(math.MaxInt64 / time.Second)

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalTOML implements toml.Unmarshaler.
func (d *Duration) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x > maxDurationSeconds || x < -maxDurationSeconds {
			return fmt.Errorf("duration %d: out of range (at most %d seconds)", x, maxDurationSeconds)
		}
		*d = Duration(time.Duration(x) * time.Second)
	case float64:
		// NaN fails both tests, so it is refused too.
		if lim := float64(maxDurationSeconds); !(x <= lim && x >= -lim) {
			return fmt.Errorf("duration %v: out of range (at most %d seconds)", x, maxDurationSeconds)
		}
		*d = Duration(time.Duration(x * float64(time.Second)))
	case string:
		p, err := time.ParseDuration(x)
		if err != nil {
			return fmt.Errorf("duration %q: want seconds or a duration like \"30s\"", x)
		}
		*d = Duration(p)
	default:
		return fmt.Errorf("duration %v: want seconds or a duration like \"30s\"", v)
	}
	return nil
}

// MaxAccelerators bounds the accelerator entries of a node, as
// wire.MaxGPUs bounds a task's: far above any node, MIG slices included.
const MaxAccelerators = wire.MaxGPUs

// MaxPrefetch bounds prefetch_capacity, the tasks a pool holds beyond its
// slots (the registration carries it in 32 bits; a pool never needs more).
const MaxPrefetch = 1 << 20

// Accelerators is available_accelerators: an int N (names "0".."N-1") or a
// list of entries, each naming one or more devices ("0,1").
type Accelerators []string

// NumberedAccelerators is what available_accelerators = n stands for: the
// entries "0" to "n-1". The caller bounds n (MaxAccelerators).
func NumberedAccelerators(n int) Accelerators {
	out := make(Accelerators, n)
	for i := range out {
		out[i] = strconv.Itoa(i)
	}
	return out
}

// UnmarshalTOML implements toml.Unmarshaler.
func (a *Accelerators) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x < 0 || x > MaxAccelerators {
			return fmt.Errorf("available_accelerators %d: want 0 to %d", x, MaxAccelerators)
		}
		*a = NumberedAccelerators(int(x))
	case []any:
		out := make(Accelerators, 0, len(x))
		for i, e := range x {
			switch s := e.(type) {
			case string:
				out = append(out, s)
			case int64:
				out = append(out, strconv.FormatInt(s, 10))
			default:
				return fmt.Errorf("available_accelerators[%d] %v: want a string such as \"0\" or \"0,1\"", i, e)
			}
		}
		*a = out
	default:
		return fmt.Errorf("available_accelerators %v: want an integer or a list of strings", v)
	}
	return nil
}

// Error lists every problem found in a config, one per line.
type Error struct{ Problems []string }

func (e *Error) Error() string { return strings.Join(e.Problems, "\n") }

func asParseError(err error, target *toml.ParseError) bool {
	return errors.As(err, target)
}

// knownKeys are the dotted keys of the schema, for "did you mean" hints.
var knownKeys = []string{
	"executor.label", "executor.run_dir", "executor.max_workers_per_node", "executor.cores_per_worker",
	"executor.mem_per_worker", "executor.cpu_affinity", "executor.available_accelerators",
	"executor.gpus_per_node", "executor.allow_shared_cpus", "executor.accelerator_vendor", "executor.prefetch_capacity",
	"executor.heartbeat_period", "executor.heartbeat_threshold", "executor.drain_period",
	"executor.retries", "executor.output_tail_bytes", "executor.address", "executor.worker_port",
	"executor.worker_port_range", "executor.client_port", "executor.encrypted", "executor.worker_command",
	"executor.allow_plaintext_network",
	"provider.kind", "provider.nodes_per_block", "provider.init_blocks", "provider.min_blocks",
	"provider.max_blocks", "provider.parallelism", "provider.walltime", "provider.worker_init",
	"provider.scheduler_options", "provider.launcher", "provider.launcher_options", "provider.cmd_timeout",
	"provider.template", "provider.account", "provider.partition", "provider.qos", "provider.constraint",
	"provider.exclusive", "provider.cores_per_node", "provider.mem_per_node", "provider.clusters",
	"provider.queue", "provider.select_options", "provider.cpus_per_node", "provider.place",
	"provider.status_polling_interval", "provider.status_polling_fast",
	"strategy.kind", "strategy.max_idletime", "strategy.period", "strategy.max_block_failures",
	"strategy.failure_backoff", "strategy.max_pending",
}

func unknownKeyMessage(key string) string {
	best, bestD := "", 1<<30
	for _, k := range knownKeys {
		d := editDistance(key, k)
		// compare the leaves too, so a key in the wrong table is found
		leaf := key[strings.LastIndexByte(key, '.')+1:]
		if j := strings.LastIndexByte(k, '.'); j >= 0 {
			d = min(d, editDistance(leaf, k[j+1:])+1)
		}
		if d < bestD {
			best, bestD = k, d
		}
	}
	if bestD <= max(2, len(key)/4) {
		return fmt.Sprintf("unknown key %q (did you mean %q?)", key, best)
	}
	return fmt.Sprintf("unknown key %q", key)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
