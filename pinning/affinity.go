package pinning

import (
	"fmt"
	"strings"
)

// Affinity strategies (the values of cpu_affinity other than list:...).
const (
	AffinityNone         = "none"
	AffinityBlock        = "block"
	AffinityBlockReverse = "block-reverse"
	AffinityAlternating  = "alternating"
	affinityListPrefix   = "list:"
)

// affinity is a parsed cpu_affinity value.
type affinity struct {
	value string  // as given, for error messages
	kind  string  // one of the Affinity* constants, or "list"
	ranks [][]int // list: one sorted, duplicate-free CPU set per rank
}

// parseAffinity checks a cpu_affinity value and, for list:..., parses its
// ranks; "" is none. It needs no knowledge of the node; the checks that do are in
// assignCPUs.
func parseAffinity(v string) (affinity, error) {
	a := affinity{value: v, kind: v}
	if v == "" {
		a.kind = AffinityNone
		return a, nil
	}
	switch v {
	case AffinityNone, AffinityBlock, AffinityBlockReverse, AffinityAlternating:
		return a, nil
	}
	rest, ok := strings.CutPrefix(v, affinityListPrefix)
	if !ok {
		return a, fmt.Errorf("cpu_affinity %q: want none, block, block-reverse, alternating or a list such as list:0-3:4-7", v)
	}
	a.kind = "list"
	for i, rank := range strings.Split(rest, ":") {
		if strings.TrimSpace(rank) == "" {
			return a, fmt.Errorf("cpu_affinity %q: rank %d is empty (ranks are separated by ':', e.g. list:0-3:4-7)", v, i)
		}
		cpus, err := ParseCPUList(rank)
		if err != nil {
			return a, fmt.Errorf("cpu_affinity %q: rank %d: %v", v, i, err)
		}
		a.ranks = append(a.ranks, cpus)
	}
	return a, nil
}

// assignCPUs gives each of n slots its CPUs from the sorted allowed set
// avail. It returns nil for affinity none.
func assignCPUs(a affinity, avail []int, n int, allowShared bool) ([][]int, error) {
	if a.kind == AffinityNone {
		return nil, nil
	}
	k := len(avail) / n
	if k == 0 {
		return nil, fmt.Errorf("cpu_affinity %q: more workers than cores: %d workers on %d CPUs", a.value, n, len(avail))
	}
	sets := make([][]int, n)
	switch a.kind {
	case AffinityBlock:
		for i := range sets {
			sets[i] = clone(avail[k*i : k*(i+1)])
		}
	case AffinityBlockReverse:
		for i := range sets {
			j := n - 1 - i
			sets[i] = clone(avail[k*j : k*(j+1)])
		}
	case AffinityAlternating:
		for i := range sets {
			for c := i; c < len(avail); c += n {
				sets[i] = append(sets[i], avail[c])
			}
		}
	case "list":
		if len(a.ranks) != n {
			return nil, fmt.Errorf("cpu_affinity %q: %d ranks for %d workers", a.value, len(a.ranks), n)
		}
		var allowed bitset
		for _, c := range avail {
			if c <= MaxCPU {
				allowed.set(c)
			}
		}
		owner := map[int]int{}
		for i, rank := range a.ranks {
			for _, c := range rank {
				if !allowed.has(c) {
					return nil, fmt.Errorf("cpu_affinity %q: rank %d: CPU %d is not in the node's allowed CPUs %s", a.value, i, c, FormatCPUList(avail))
				}
				if j, dup := owner[c]; dup && !allowShared {
					return nil, fmt.Errorf("cpu_affinity %q: CPU %d is in rank %d and rank %d (set allow_shared_cpus to allow this)", a.value, c, j, i)
				}
				owner[c] = i
			}
			sets[i] = clone(rank)
		}
	}
	return sets, nil
}

func clone(s []int) []int { return append([]int(nil), s...) }
