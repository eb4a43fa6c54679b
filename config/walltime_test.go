package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseWalltime(t *testing.T) {
	cases := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"01:00:00", time.Hour, ""},
		{"30:00", 30 * time.Minute, ""},
		{"2-03:04:05", 51*time.Hour + 4*time.Minute + 5*time.Second, ""},
		{"48:00:00", 48 * time.Hour, ""},
		{"8760:00:00", MaxWalltime, ""},
		{"365-00:00:00", MaxWalltime, ""},
		{"365-00:00:01", 0, "over the limit of 365 days"},
		{"8760:00:01", 0, "over the limit of 365 days"},
		// Used to wrap around into 262,661 hours.
		{"3000000-00:00:00", 0, "over the limit of 365 days"},
		// Used to read as 0 ("must be positive").
		{"9999999999:00:00", 0, "over the limit of 365 days"},
		{"99999999999999999999:00:00", 0, "over the limit of 365 days"},
		{"00:00:00", 0, "must be positive"},
		{"01:60:00", 0, "minutes and seconds must be below 60"},
		{"1", 0, "want HH:MM:SS"},
		{"1:2:3:4", 0, "want HH:MM:SS"},
		{"-1:00", 0, "want HH:MM:SS"},
		{"1-:00:00", 0, "want HH:MM:SS"},
		{"+1-00:00:00", 0, "want HH:MM:SS"},
		{"1h", 0, "want HH:MM:SS"},
		{"", 0, "want HH:MM:SS"},
	}
	for _, c := range cases {
		got, err := ParseWalltime(c.in)
		if c.wantErr == "" {
			if err != nil || got != c.want {
				t.Errorf("ParseWalltime(%q) = %v, %v; want %v", c.in, got, err, c.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), fmt.Sprintf("%q", c.in)) {
			t.Errorf("ParseWalltime(%q) = %v, %v; want an error naming the value and saying %q", c.in, got, err, c.wantErr)
		}
	}
}

// Whatever the text, a walltime read is positive, within the limit, in
// whole seconds, and reads back the same from its H:MM:SS form.
func FuzzParseWalltime(f *testing.F) {
	for _, s := range []string{"01:00:00", "30:00", "2-03:04:05", "365-00:00:00", "3000000-00:00:00", "9999999999:00:00", "1-:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseWalltime(s)
		if err != nil {
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", s)) {
				t.Fatalf("error %q does not name the value %q", err, s)
			}
			return
		}
		if d <= 0 || d > MaxWalltime || d%time.Second != 0 {
			t.Fatalf("ParseWalltime(%q) = %v", s, d)
		}
		sec := int64(d / time.Second)
		canon := fmt.Sprintf("%d:%02d:%02d", sec/3600, sec/60%60, sec%60)
		if back, err := ParseWalltime(canon); err != nil || back != d {
			t.Fatalf("ParseWalltime(%q) = %v, but its form %q reads %v, %v", s, d, canon, back, err)
		}
	})
}
