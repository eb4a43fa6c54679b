package wire

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// TestFuzzCorpus checks the seed corpus of FuzzDecode says what its names
// say: files named bad-* are rejected, the others are real messages that
// decode and survive a round trip.
func TestFuzzCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecode", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			b := readCorpusBytes(t, f)
			m, err := Decode(b)
			if strings.HasPrefix(name, "bad-") {
				if err == nil {
					t.Fatalf("Decode accepted %q as %T", name, m.Body)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			again, err := Decode(MustEncode(m))
			if err != nil || !proto.Equal(m, again) {
				t.Fatalf("round trip: %v\n%v\n%v", err, m, again)
			}
		})
	}
}

// readCorpusBytes reads a one-value file of the go fuzz corpus format.
func readCorpusBytes(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	header, rest, ok := strings.Cut(string(data), "\n")
	if !ok || header != "go test fuzz v1" {
		t.Fatalf("%s: not a go fuzz corpus file", path)
	}
	lit, ok := strings.CutPrefix(strings.TrimSpace(rest), "[]byte(")
	if !ok || !strings.HasSuffix(lit, ")") {
		t.Fatalf("%s: want one []byte value", path)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}
