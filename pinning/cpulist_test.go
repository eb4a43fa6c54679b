package pinning

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		err  string
	}{
		{in: "0", want: []int{0}},
		{in: "0-7,16-23", want: cat(seq(0, 7), seq(16, 23))},
		{in: "16-23,0-7", want: cat(seq(0, 7), seq(16, 23))},
		{in: "3,1,2,1", want: []int{1, 2, 3}},
		{in: "0-3,2-5", want: seq(0, 5)},
		{in: " 4 , 5-6 ", want: []int{4, 5, 6}},
		{in: "007", want: []int{7}},
		{in: "5-5", want: []int{5}},
		{in: "65535", want: []int{65535}},
		{in: "", err: `empty CPU list`},
		{in: "  ", err: `empty CPU list`},
		{in: "1,", err: `empty item in CPU list`},
		{in: "x", err: `item "x": want a CPU id or a range a-b`},
		{in: "0-3,abc", err: `item "abc": want a CPU id or a range a-b`},
		{in: "-3", err: `item "-3": want a CPU id or a range a-b`},
		{in: "3-", err: `item "3-": want a CPU id or a range a-b`},
		{in: "1-2-3", err: `item "1-2-3": want a CPU id or a range a-b`},
		{in: "+1", err: `item "+1": want a CPU id or a range a-b`},
		{in: "1.5", err: `item "1.5": want a CPU id or a range a-b`},
		{in: "1 - 3", err: `item "1 - 3": want a CPU id or a range a-b`},
		{in: "0x10", err: `item "0x10": want a CPU id or a range a-b`},
		{in: "7-3", err: `item "7-3": range start 7 is above its end 3`},
		{in: "65536", err: `item "65536": CPU id above 65535`},
		{in: "0-4000000000", err: `item "0-4000000000": CPU id above 65535`},
		{in: "99999999999999999999999", err: `item "99999999999999999999999": CPU id above 65535`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseCPUList(tt.in)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("ParseCPUList(%q) = %v, %v; want error %s", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseCPUList(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatCPUList(t *testing.T) {
	tests := []struct {
		in   []int
		want string
	}{
		{nil, ""},
		{[]int{0}, "0"},
		{[]int{0, 1}, "0-1"},
		{[]int{0, 1, 2, 3, 8}, "0-3,8"},
		{[]int{8, 3, 2, 1, 0, 2}, "0-3,8"},
		{[]int{1, 3, 5}, "1,3,5"},
		{cat(seq(1, 8), seq(105, 112)), "1-8,105-112"},
	}
	for _, tt := range tests {
		if got := FormatCPUList(tt.in); got != tt.want {
			t.Errorf("FormatCPUList(%v) = %q, want %q", tt.in, got, tt.want)
		}
		if tt.want == "" {
			continue
		}
		back, err := ParseCPUList(tt.want)
		if err != nil || FormatCPUList(back) != tt.want {
			t.Errorf("ParseCPUList(%q) = %v, %v: not a round trip", tt.want, back, err)
		}
	}
}

// FuzzCPUList checks that ParseCPUList never panics, returns sorted unique
// ids in range, and agrees with FormatCPUList.
func FuzzCPUList(f *testing.F) {
	for _, s := range []string{"0", "0-7,16-23", "3,1,2", " 4 , 5-6", "7-3", "1-2-3", "", "65535", "0-65535"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseCPUList(s)
		if err != nil {
			if got != nil {
				t.Fatalf("ParseCPUList(%q) returned %v with error %v", s, got, err)
			}
			return
		}
		if len(got) == 0 {
			t.Fatalf("ParseCPUList(%q) = empty list without error", s)
		}
		for i, c := range got {
			if c < 0 || c > MaxCPU || i > 0 && c <= got[i-1] {
				t.Fatalf("ParseCPUList(%q) = %v: not sorted, unique and in range", s, got)
			}
		}
		back, err := ParseCPUList(FormatCPUList(got))
		if err != nil || !reflect.DeepEqual(back, got) {
			t.Fatalf("round trip of %q via %q gave %v, %v", s, FormatCPUList(got), back, err)
		}
	})
}

// FuzzAffinityList runs Plan with a fuzzed list: affinity and checks that it
// never panics and that a layout it returns keeps the invariants.
func FuzzAffinityList(f *testing.F) {
	for _, s := range []string{"0-3:4-7", "0,2:1,3", "0:1:2", "0-3:3-5", "list:0", "0::1", "9-2:1", "0-1-2"} {
		f.Add(s, uint8(2), uint8(8), false)
	}
	f.Add("1-8,105-112:9-16,113-120", uint8(2), uint8(208), true)
	f.Fuzz(func(t *testing.T, ranks string, workers, ncpu uint8, shared bool) {
		node := Node{CPUs: seq(0, int(ncpu)-1)}
		opts := Options{
			MaxWorkersPerNode: int(workers),
			CoresPerWorker:    1,
			CPUAffinity:       "list:" + ranks,
			AllowSharedCPUs:   shared,
		}
		l, err := Plan(node, opts)
		if err != nil {
			if !strings.HasPrefix(err.Error(), `cpu_affinity "list:`) && !strings.HasPrefix(err.Error(), "node has no CPUs") {
				t.Fatalf("error does not name the option: %v", err)
			}
			return
		}
		if got, want := len(l.Slots), strings.Count(ranks, ":")+1; got != want {
			t.Fatalf("%d slots for %d ranks", got, want)
		}
		checkInvariants(t, node, opts, l)
	})
}
