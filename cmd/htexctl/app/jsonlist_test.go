package app

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestJSONListLikeEncoder: element by element gives the bytes the encoder
// gives for the whole list.
func TestJSONListLikeEncoder(t *testing.T) {
	one := int64(1)
	tests := map[string][]resultJSON{
		"empty": {},
		"one":   {{TaskID: 1, State: "succeeded", Stdout: "a<b>&\n\xff", Argv: []string{"sh", "-c", "x"}}},
		"three": {{TaskID: 1}, {TaskID: 2, ArrayIndex: &one, Error: "exit status 1"}, {TaskID: 3, Argv: []string{}}},
	}
	for name, list := range tests {
		var want, got bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetIndent("", "  ")
		if err := enc.Encode(list); err != nil {
			t.Fatal(err)
		}
		l := &jsonList{w: &got}
		for _, r := range list {
			if err := l.add(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.close(); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%s:\n got %q\nwant %q", name, got.String(), want.String())
		}
	}
}
