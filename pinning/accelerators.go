package pinning

import (
	"strconv"
	"strings"
)

// oversubscribed reports whether n slots over entries on a node with gpus
// physical GPUs are spread over the GPUs (NVIDIA MPS style): every entry is
// a plain non-negative integer and there are more entries than GPUs.
func oversubscribed(entries []string, gpus int) bool {
	if gpus <= 0 || len(entries) <= gpus {
		return false
	}
	for _, e := range entries {
		if e == "" || strings.TrimLeft(e, "0123456789") != "" {
			return false
		}
	}
	return true
}

// gpuOf returns the physical GPU of slot i when n slots are spread over g
// GPUs in contiguous blocks whose sizes differ by at most one, the larger
// blocks first: 6 on 4 gives 2,2,1,1; 32 on 4 gives 8 each; 2 on 4 gives
// 1,1,0,0. The result is always in [0, g).
func gpuOf(i, n, g int) int {
	q, r := n/g, n%g
	big := r * (q + 1) // slots on the first r GPUs
	if i < big {
		return i / (q + 1)
	}
	// Here q >= 1: when q == 0, r == n and every i < n took the branch above.
	return r + (i-big)/q
}

// assignAccelerators returns the device string of each of n slots (n is at
// most len(entries)), or nil when there are no entries.
func assignAccelerators(entries []string, gpus, n int) []string {
	if len(entries) == 0 {
		return nil
	}
	out := make([]string, n)
	over := oversubscribed(entries, gpus)
	for i := range out {
		if over {
			out[i] = strconv.Itoa(gpuOf(i, n, gpus))
		} else {
			out[i] = entries[i]
		}
	}
	return out
}
