package wire

import (
	"strings"
	"testing"
)

func TestParseMem(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		err  string
	}{
		{"1073741824", 1 << 30, ""},
		{"512M", 512 << 20, ""},
		{"512m", 512 << 20, ""},
		{"4G", 4 << 30, ""},
		{"4GB", 4 << 30, ""},
		{"4GiB", 4 << 30, ""},
		{"4gib", 4 << 30, ""},
		{"1.5G", 3 << 29, ""},
		{" 2K ", 2048, ""},
		{"100B", 100, ""},
		{"1T", 1 << 40, ""},
		{"1P", 1 << 50, ""},
		{".5K", 512, ""},
		{"0.0001K", 1, ""}, // rounded up to a whole byte
		{"", 0, "empty"},
		{"0", 0, "more than 0"},
		{"0G", 0, "more than 0"},
		{"-4G", 0, "want a positive number"},
		{"4X", 0, "want a positive number"},
		{"G", 0, "want a positive number"},
		{"4 G", 0, "want a positive number"},
		{"1.2.3G", 0, "want a positive number"},
		{"1e9", 0, "want a positive number"},
		{"4iB", 0, "iB needs a unit"},
		{"2P", 0, "over the limit"},
		{"1125899906842625", 0, "over the limit"},
		{"99999999999999999999999G", 0, "over the limit"},
		{"1024.5T", 0, "over the limit"},
		{"NaN", 0, "want a positive number"},
	} {
		got, err := ParseMem(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseMem(%q) = %d, %v; want an error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseMem(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestFormatMem(t *testing.T) {
	for _, c := range []struct {
		in   int64
		want string
	}{{100, "100B"}, {2048, "2K"}, {3 << 29, "1.5G"}, {4 << 30, "4G"}, {1 << 50, "1P"}, {62 << 30, "62G"},
		{1<<40 + 8, "1T"}, {1<<40 - 8, "1T"}, {(1024<<30 + 11) / 12, "85.3G"}, {1023 << 30, "1023G"}} {
		if got := FormatMem(c.in); got != c.want {
			t.Errorf("FormatMem(%d) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCheckSize(t *testing.T) {
	for _, c := range []struct {
		cores, gpus int32
		mem         int64
		err         string
	}{
		{0, 0, 0, ""},
		{4, 2, 1 << 30, ""},
		{-1, 0, 0, "--cores -1"},
		{MaxCores + 1, 0, 0, "--cores 65537"},
		{0, -2, 0, "--gpus -2"},
		{0, 0, -5, "--mem -5 bytes"},
		{0, 0, MaxMemBytes + 1, "--mem"},
	} {
		err := CheckSize(c.cores, c.gpus, c.mem)
		if (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("CheckSize(%d, %d, %d) = %v, want %q", c.cores, c.gpus, c.mem, err, c.err)
		}
	}
}

// FuzzParseMem: any text either parses to a size in [1, MaxMemBytes] that
// FormatMem writes back to (about) the same size, or is an error naming
// the text; never a panic.
func FuzzParseMem(f *testing.F) {
	for _, s := range []string{"512M", "4G", "1.5G", "1073741824", "0", "-1", "4GiB", "1e9", "2P", ".", "1..2K", "9999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseMem(s)
		if err != nil {
			if n != 0 {
				t.Fatalf("ParseMem(%q) = %d with error %v", s, n, err)
			}
			return
		}
		if n < 1 || n > MaxMemBytes {
			t.Fatalf("ParseMem(%q) = %d, out of [1, %d]", s, n, int64(MaxMemBytes))
		}
		back, err := ParseMem(FormatMem(n))
		if err != nil {
			t.Fatalf("ParseMem(FormatMem(%d) = %q): %v", n, FormatMem(n), err)
		}
		if d := back - n; d < -n/20-1 || d > n/20+1 { // one decimal: within 5 %
			t.Fatalf("ParseMem(FormatMem(%d)) = %d", n, back)
		}
	})
}
