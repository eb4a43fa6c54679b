package pinning

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxCPU is the highest CPU id a CPU list may name. Linux kernels are built
// for at most 8192 CPUs; the bound keeps a typo such as "0-4000000000" from
// allocating gigabytes.
const MaxCPU = 65535

// ParseCPUList parses a CPU list such as "0-7,16-23": comma-separated items,
// each a CPU id or an inclusive range a-b (spaces around items are allowed).
// It returns the ids sorted and without duplicates. An empty list, an item
// that is not a non-negative integer or range, a range with a > b, and an id
// above MaxCPU are errors that quote the item.
func ParseCPUList(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("empty CPU list")
	}
	var seen bitset
	for item := range strings.SplitSeq(s, ",") {
		lo, hi, err := parseCPUItem(item)
		if err != nil {
			return nil, err
		}
		for c := lo; c <= hi; c++ {
			seen.set(c)
		}
	}
	return seen.members(), nil
}

// parseCPUItem parses one item of a CPU list: "N" or "A-B".
func parseCPUItem(item string) (lo, hi int, err error) {
	t := strings.TrimSpace(item)
	if t == "" {
		return 0, 0, fmt.Errorf("empty item in CPU list")
	}
	a, b, isRange := strings.Cut(t, "-")
	lo, err = parseCPUID(a)
	if err != nil {
		return 0, 0, fmt.Errorf("item %q: %v", t, err)
	}
	if !isRange {
		return lo, lo, nil
	}
	hi, err = parseCPUID(b)
	if err != nil {
		return 0, 0, fmt.Errorf("item %q: %v", t, err)
	}
	if lo > hi {
		return 0, 0, fmt.Errorf("item %q: range start %d is above its end %d", t, lo, hi)
	}
	return lo, hi, nil
}

func parseCPUID(s string) (int, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("want a CPU id or a range a-b")
	}
	// Drop leading zeros so that a long run of them is not an overflow.
	t := strings.TrimLeft(s, "0")
	if t == "" {
		return 0, nil
	}
	if len(t) > len(strconv.Itoa(MaxCPU)) {
		return 0, fmt.Errorf("CPU id above %d", MaxCPU)
	}
	n, err := strconv.Atoi(t)
	if err != nil || n > MaxCPU {
		return 0, fmt.Errorf("CPU id above %d", MaxCPU)
	}
	return n, nil
}

// FormatCPUList writes CPU ids compactly, runs of consecutive ids as ranges:
// [0 1 2 3 8] gives "0-3,8". The ids are sorted first (a copy is made); an
// empty list gives "".
func FormatCPUList(cpus []int) string {
	c := slices.Clone(cpus)
	slices.Sort(c)
	c = slices.Compact(c)
	var b strings.Builder
	for i := 0; i < len(c); {
		j := i
		for j+1 < len(c) && c[j+1] == c[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(c[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(c[j]))
		}
		i = j + 1
	}
	return b.String()
}

// bitset is a set of CPU ids in [0, MaxCPU].
type bitset [(MaxCPU + 64) / 64]uint64

func (s *bitset) set(c int)      { s[c/64] |= 1 << (c % 64) }
func (s *bitset) has(c int) bool { return s[c/64]&(1<<(c%64)) != 0 }

func (s *bitset) members() []int {
	var out []int
	for w, word := range s {
		for bit := 0; word != 0; bit++ {
			if word&1 != 0 {
				out = append(out, w*64+bit)
			}
			word >>= 1
		}
	}
	return out
}
