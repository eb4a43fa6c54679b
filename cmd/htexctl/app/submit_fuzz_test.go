package app

import (
	"fmt"
	"strings"
	"testing"
)

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"1-20", "0-0", "5-2", "-3-4", "1--2", "abc", "7", "0-9999999", "0-10000000",
		"9223372036854775807-9223372036854775807", "1-9223372036854775807", "+1-+2", " 1-2", "1-2-3", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, b, err := parseRange(s)
		if err != nil {
			if !strings.Contains(err.Error(), fmt.Sprintf("--array %q", s)) {
				t.Fatalf("error %q does not name the flag and the value", err)
			}
			return
		}
		if a < 0 || b < a || b-a >= 10_000_000 {
			t.Fatalf("parseRange(%q) = %d, %d: out of bounds", s, a, b)
		}
		a2, b2, err := parseRange(fmt.Sprintf("%d-%d", a, b))
		if err != nil || a2 != a || b2 != b {
			t.Fatalf("parseRange(%q) = %d, %d, but its canonical form gives %d, %d, %v", s, a, b, a2, b2, err)
		}
	})
}

func FuzzCommandLines(f *testing.F) {
	for _, s := range []string{"echo one\n\n# c\n  echo two  \n", "", "\n\n", "#only\n", "a\r\nb\r\n", "no newline at end",
		"\t# indented\n x # not a comment\n", strings.Repeat("y", maxLine+1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lines, err := commandLines(strings.NewReader(s))
		// An independent reading: split at newlines, drop a CR before one.
		var want []commandLine
		longest := 0
		for i, l := range strings.Split(s, "\n") {
			longest = max(longest, len(l))
			l = strings.TrimSpace(strings.TrimSuffix(l, "\r"))
			if l != "" && !strings.HasPrefix(l, "#") {
				want = append(want, commandLine{no: i + 1, text: l})
			}
		}
		if err != nil {
			if longest < maxLine/2 {
				t.Fatalf("commandLines: %v, though no line is long", err)
			}
			if !strings.Contains(err.Error(), "line ") {
				t.Fatalf("error %q does not name the line", err)
			}
			return
		}
		if len(lines) != len(want) {
			t.Fatalf("got %d lines %+v, want %d %+v", len(lines), lines, len(want), want)
		}
		for i, l := range lines {
			if l != want[i] {
				t.Fatalf("command %d: %+v, want %+v", i, l, want[i])
			}
		}
	})
}
