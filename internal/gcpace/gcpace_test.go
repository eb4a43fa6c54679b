package gcpace

import "testing"

func TestPercent(t *testing.T) {
	const MiB = 1 << 20
	for _, tt := range []struct {
		live    uint64
		current int
		want    int
	}{
		{100 * MiB, NormalPercent, NormalPercent},
		{100 * MiB, LargePercent, NormalPercent}, // well below: back to normal
		{LargeHeap, NormalPercent, LargePercent},
		{2000 * MiB, NormalPercent, LargePercent},
		{450 * MiB, NormalPercent, NormalPercent}, // between the lines: no change
		{450 * MiB, LargePercent, LargePercent},
		{NormalHeap, LargePercent, LargePercent},
		{NormalHeap - 1, LargePercent, NormalPercent},
	} {
		if got := Percent(tt.live, tt.current); got != tt.want {
			t.Errorf("Percent(%d MiB, %d) = %d, want %d", tt.live/MiB, tt.current, got, tt.want)
		}
	}
}
