package app

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/htex/htex/wire"
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
		if lines.len() != len(want) {
			t.Fatalf("got %d lines %+v, want %d %+v", lines.len(), lines, len(want), want)
		}
		for i := range lines.len() {
			if l := lines.at(i); l != want[i] {
				t.Fatalf("command %d: %+v, want %+v", i, l, want[i])
			}
		}
	})
}

// FuzzFileTasks: any bytes in a --file either become tasks whose command
// line is exactly the line as written (trimmed, as the doc says), through
// the wire codec, or are refused with an error naming the line.
func FuzzFileTasks(f *testing.F) {
	for _, s := range []string{"echo hi\n", "printf '%s' caf\xe9\n", "a\x00b\n", "x\r\n\n# c\n\xff\xfe\n", "echo 'a,b' \"$X\"\n"} {
		f.Add([]byte(s))
	}
	mk := func(argv []string, idx int64) *wire.TaskSpec {
		s := &wire.TaskSpec{ArrayIndex: idx}
		s.SetArgs(argv)
		return s
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := commandLines(bytes.NewReader(data))
		if err != nil {
			if !strings.Contains(err.Error(), "line ") {
				t.Fatalf("error %q does not name the line", err)
			}
			return
		}
		specs, err := allSpecs(fileSource("f", lines, mk))
		if err != nil {
			if !strings.Contains(err.Error(), "--file f line ") {
				t.Fatalf("error %q does not name the line", err)
			}
			return
		}
		raw := strings.Split(string(data), "\n")
		b, err := wire.Encode(&wire.Envelope{Body: &wire.Envelope_Submit{Submit: &wire.SubmitRequest{Tasks: specs}}})
		if err != nil {
			t.Fatalf("a task that passed the checks does not encode: %v", err)
		}
		m, err := wire.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range m.GetSubmit().Tasks {
			line := lines.at(i)
			want := strings.TrimSpace(strings.TrimSuffix(raw[line.no-1], "\r"))
			if argv := s.Args(); len(argv) != 3 || argv[2] != want || argv[2] != line.text {
				t.Fatalf("line %d: argv %q, want sh -c %q", line.no, argv, want)
			}
		}
	})
}
