package wire

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The bounds of a task's size (submit --cores, --gpus, --mem). They are far
// above any node there is; they keep sums and products of sizes (weights,
// totals in status) well inside 64-bit integers.
const (
	MaxCores    = 1 << 16 // CPUs of one task
	MaxGPUs     = 1 << 10 // accelerators of one task
	MaxMemBytes = 1 << 50 // 1 PiB
)

// CheckSize checks the size of a task as a spec carries it: 0 means not
// asked, anything else must be positive and within the bounds above. The
// error names the flag and the value.
func CheckSize(cores, gpus int32, memBytes int64) error {
	if cores < 0 || cores > MaxCores {
		return fmt.Errorf("--cores %d: must be in [1, %d]", cores, MaxCores)
	}
	if gpus < 0 || gpus > MaxGPUs {
		return fmt.Errorf("--gpus %d: must be in [1, %d]", gpus, MaxGPUs)
	}
	if memBytes < 0 || memBytes > MaxMemBytes {
		return fmt.Errorf("--mem %d bytes: must be in [1, %d] (1 PiB)", memBytes, int64(MaxMemBytes))
	}
	return nil
}

// memUnits are the suffixes ParseMem accepts, binary as Slurm's --mem
// units are (K = 1024 bytes, ...).
var memUnits = map[string]int64{"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}

// ParseMem reads a memory size: a number of bytes, or a number (decimals
// allowed) with a binary unit K, M, G, T or P, optionally followed by B or
// iB, in any case: 512M, 4G, 1.5G, 4GiB, 1073741824. The result is at
// least one byte and at most MaxMemBytes; errors say what was wrong with
// the text, without the flag's name (the caller adds it).
func ParseMem(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty; want a size such as 512M, 4G or 1.5G")
	}
	u := strings.ToUpper(t)
	ib := strings.HasSuffix(u, "IB")
	switch {
	case ib:
		u = u[:len(u)-2]
	case strings.HasSuffix(u, "B"):
		u = u[:len(u)-1]
	}
	num, unit := u, ""
	if n := len(u); n > 0 && strings.IndexByte("KMGTP", u[n-1]) >= 0 {
		num, unit = u[:n-1], u[n-1:]
	}
	if ib && unit == "" {
		return 0, fmt.Errorf("%q: iB needs a unit before it (KiB, MiB, GiB, ...)", s)
	}
	if num == "" || num == "." || strings.TrimLeft(num, "0123456789.") != "" || strings.Count(num, ".") > 1 {
		return 0, fmt.Errorf("%q: want a positive number with an optional unit K, M, G, T or P (e.g. 512M, 4G, 1.5G)", s)
	}
	mult := memUnits[unit]
	var bytes float64
	if whole, err := strconv.ParseInt(num, 10, 64); err == nil {
		if whole > MaxMemBytes/mult {
			return 0, fmt.Errorf("%q: over the limit of 1P (%d bytes)", s, int64(MaxMemBytes))
		}
		bytes = float64(whole * mult)
	} else {
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, fmt.Errorf("%q: want a positive number with an optional unit K, M, G, T or P", s)
		}
		bytes = math.Ceil(f * float64(mult))
	}
	if bytes > MaxMemBytes {
		return 0, fmt.Errorf("%q: over the limit of 1P (%d bytes)", s, int64(MaxMemBytes))
	}
	if bytes < 1 {
		return 0, fmt.Errorf("%q: must be more than 0 bytes", s)
	}
	return int64(bytes), nil
}

// SizeFlags writes a task's size as submit's flags ("--cores 4 --gpus 1
// --mem 4G"; "" for no size).
func SizeFlags(cores, gpus int32, memBytes int64) string {
	var parts []string
	if cores > 0 {
		parts = append(parts, "--cores "+strconv.Itoa(int(cores)))
	}
	if gpus > 0 {
		parts = append(parts, "--gpus "+strconv.Itoa(int(gpus)))
	}
	if memBytes > 0 {
		parts = append(parts, "--mem "+FormatMem(memBytes))
	}
	return strings.Join(parts, " ")
}

// FormatMem writes a memory size for people, in the largest binary unit
// it holds, exact when whole and else rounded to one decimal (4G, 1.5G,
// 85.3G, 512M; 100 bytes as "100B"); a size a few bytes from a whole
// unit is written as that unit (1T for 1T + 8 bytes).
func FormatMem(b int64) string {
	units := []struct {
		s string
		n int64
	}{{"P", 1 << 50}, {"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}}
	for _, u := range units {
		// Just below a whole unit (1024.0 of the next smaller one) counts
		// as the unit.
		if b >= u.n || float64(b)/float64(u.n) >= 1023.95/1024 {
			if b%u.n == 0 {
				return strconv.FormatInt(b/u.n, 10) + u.s
			}
			v := strconv.FormatFloat(float64(b)/float64(u.n), 'f', 1, 64)
			return strings.TrimSuffix(v, ".0") + u.s
		}
	}
	return strconv.FormatInt(b, 10) + "B"
}
