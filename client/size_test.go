package client

import (
	"strings"
	"testing"

	"github.com/htex/htex/wire"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		name             string
		cores, gpus, mem string
		want             Size
		err              string
	}{
		{"none", "", "", "", Size{}, ""},
		{"all", "8", "2", "4G", Size{Cores: 8, GPUs: 2, MemBytes: 4 << 30}, ""},
		{"mem decimals", "", "", "1.5G", Size{MemBytes: 3 << 29}, ""},
		{"cores zero", "0", "", "", Size{}, "--cores 0: must be at least 1"},
		{"cores negative", "-3", "", "", Size{}, "--cores -3: must be at least 1"},
		{"cores garbage", "four", "", "", Size{}, `--cores "four": want a whole number`},
		{"cores fraction", "1.5", "", "", Size{}, `--cores "1.5": want a whole number`},
		{"cores overflow", "99999999999999999999", "", "", Size{}, "over the limit"},
		{"cores over limit", "70000", "", "", Size{}, "--cores 70000: over the limit of 65536"},
		{"gpus zero", "", "0", "", Size{}, "--gpus 0"},
		{"gpus garbage", "", "x", "", Size{}, `--gpus "x"`},
		{"mem zero", "", "", "0", Size{}, `--mem "0": must be more than 0`},
		{"mem garbage", "", "", "lots", Size{}, `--mem "lots"`},
		{"mem negative", "", "", "-1G", Size{}, `--mem "-1G"`},
		{"mem overflow", "", "", "9999999999T", Size{}, "over the limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseSize(c.cores, c.gpus, c.mem)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("= %+v, %v; want %+v", got, err, c.want)
			}
			if err := wire.CheckSize(got.Cores, got.GPUs, got.MemBytes); err != nil {
				t.Fatalf("a parsed size fails CheckSize: %v", err)
			}
		})
	}
}

func TestSizeApplyString(t *testing.T) {
	z := Size{Cores: 4, GPUs: 1, MemBytes: 512 << 20}
	s := &wire.TaskSpec{}
	z.Apply(s)
	if s.Cores != 4 || s.Gpus != 1 || s.MemBytes != 512<<20 {
		t.Fatalf("Apply: %+v", s)
	}
	if got := z.String(); got != "--cores 4 --gpus 1 --mem 512M" {
		t.Fatalf("String = %q", got)
	}
	if (Size{}).String() != "" {
		t.Fatal("the zero size writes something")
	}
}
