package journal

import (
	"encoding/json"
	"slices"
	"testing"
	"unicode/utf8"
)

func TestJSONStringsExact(t *testing.T) {
	tests := []struct {
		name string
		ss   []string
	}{
		{"plain", []string{"echo", "hi"}},
		{"invalid byte", []string{"cat", "caf\xe9.txt"}},
		{"env value", []string{"X=\xff\xfe"}},
		{"would-be surrogate in CESU-8", []string{"\xed\xb2\x80"}},
		{"escapes and unicode", []string{"a\"b\\c\n\t\x01", "héllo ✓ 😀", "<&>"}},
		{"empty string", []string{""}},
		{"literal backslash-u text", []string{`\udc80`, `\u00e9`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := appendJSONStrings(nil, tt.ss)
			got, err := parseStrings(enc)
			if err != nil || !slices.Equal(got, tt.ss) {
				t.Fatalf("parseStrings(%s) = %q, %v; want %q", enc, got, err, tt.ss)
			}
			if !json.Valid(enc) {
				t.Fatalf("%s is not valid JSON", enc)
			}
		})
	}
}

func TestParseStringsOtherJSON(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{`["a","b"]`, []string{"a", "b"}, true},
		{` [ "\u00e9" , "\ud83d\ude00" ] `, []string{"é", "😀"}, true},
		{`["\ud800"]`, []string{"\ufffd"}, true},
		{`["\udc41"]`, []string{"\ufffd"}, true},
		{`["\udc80"]`, []string{"\x80"}, true},
		{`[]`, nil, true},
		{`["a",]`, nil, false},
		{`["\u12"]`, nil, false},
		{`["\x"]`, nil, false},
		{`["a"] x`, nil, false},
		{`{"a":1}`, nil, false},
		{`["\u0041`, nil, false},
	}
	for _, tt := range tests {
		got, err := parseStrings([]byte(tt.in))
		if (err == nil) != tt.ok || (tt.ok && !slices.Equal(got, tt.want)) {
			t.Errorf("parseStrings(%s) = %q, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// FuzzParseStrings: any input parses or fails without a panic, and where
// no byte was escaped it agrees with encoding/json.
func FuzzParseStrings(f *testing.F) {
	f.Add([]byte(`["\udc80"]`))
	f.Add([]byte(`[" \ud83d\ude00 ","x"]`))
	f.Add([]byte(`["a",`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		p := &jsonStrings{b: raw}
		mine, err := p.array()
		var std []string
		if err != nil || json.Unmarshal(raw, &std) != nil {
			return
		}
		for _, s := range mine {
			for i := 0; i < len(s); i++ {
				if s[i] >= 0x80 && !utf8.ValidString(s) {
					return // an escaped byte: encoding/json shows U+FFFD there
				}
			}
		}
		if !slices.Equal(mine, std) && !(len(mine) == 0 && len(std) == 0) {
			t.Fatalf("%q: %q, encoding/json %q", raw, mine, std)
		}
	})
}
