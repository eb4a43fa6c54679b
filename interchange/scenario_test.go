package interchange

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The scenario runner: each file under testdata/scenarios is a list of
// cases in the style of cockroachdb/datadriven,
//
//	# a comment
//	command arg key=value ...
//	input lines (some commands)
//	----
//	expected output
//	<blank line>
//
// run against one core (core.go) with no socket, clock or SQLite: the
// commands are events and the output is the actions they produced
// (scenario_cmds_test.go). `go test ./interchange -run TestScenarios
// -rewrite` writes the outputs the core gives into the files; read the
// diff before committing it.

var rewrite = flag.Bool("rewrite", false, "write the scenario outputs the core gives into testdata")

type scenarioCase struct {
	line   int // of the command
	cmd    string
	args   []string
	input  []string
	output string
}

func parseScenarios(t *testing.T, path string) []scenarioCase {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []scenarioCase
	sc := bufio.NewScanner(f)
	n := 0
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		n++
		return sc.Text(), true
	}
	for {
		line, ok := next()
		if !ok {
			break
		}
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		c := scenarioCase{line: n, cmd: fields[0], args: fields[1:]}
		for {
			l, ok := next()
			if !ok {
				t.Fatalf("%s:%d: %s: no ---- line", path, c.line, c.cmd)
			}
			if l == "----" {
				break
			}
			c.input = append(c.input, l)
		}
		var out []string
		for {
			l, ok := next()
			if !ok || l == "" {
				break
			}
			out = append(out, l)
		}
		c.output = strings.Join(out, "\n")
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

func writeScenarios(t *testing.T, path string, cases []scenarioCase, got []string) {
	t.Helper()
	// Keep the comments: copy the file, replacing each case's output.
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	var b strings.Builder
	ci := 0
	for i := 0; i < len(lines); i++ {
		if ci < len(cases) && i+1 == cases[ci].line {
			c := cases[ci]
			b.WriteString(lines[i] + "\n")
			for _, in := range c.input {
				b.WriteString(in + "\n")
			}
			b.WriteString("----\n")
			if got[ci] != "" {
				b.WriteString(got[ci] + "\n")
			}
			b.WriteString("\n")
			// skip the old input, separator and output
			i += len(c.input) + 1
			for i+1 < len(lines) && lines[i+1] != "" {
				i++
			}
			i++ // the blank line
			ci++
			continue
		}
		if i == len(lines)-1 && lines[i] == "" {
			break
		}
		b.WriteString(lines[i] + "\n")
	}
	if err := os.WriteFile(path, []byte(strings.TrimRight(b.String(), "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestScenarios runs every scenario file against a fresh core.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/scenarios/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files: %v", err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			cases := parseScenarios(t, path)
			h := newHarness()
			got := make([]string, len(cases))
			for i, c := range cases {
				out, err := h.run(c)
				if err != nil {
					t.Fatalf("%s:%d: %s: %v", path, c.line, c.cmd, err)
				}
				if err := h.invariants(); err != nil {
					t.Fatalf("%s:%d: after %s: %v", path, c.line, c.cmd, err)
				}
				got[i] = strings.TrimRight(out, "\n")
				if !*rewrite && got[i] != c.output {
					t.Errorf("%s:%d: %s %s\nwant:\n%s\ngot:\n%s", path, c.line, c.cmd, strings.Join(c.args, " "),
						c.output, got[i])
				}
			}
			if *rewrite {
				writeScenarios(t, path, cases, got)
			}
		})
	}
}

// args parses key=value arguments; bare words go to rest.
type args struct {
	kv   map[string]string
	rest []string
}

func parseArgs(in []string) args {
	a := args{kv: map[string]string{}}
	for _, s := range in {
		if k, v, ok := strings.Cut(s, "="); ok {
			a.kv[k] = v
		} else {
			a.rest = append(a.rest, s)
		}
	}
	return a
}

func (a args) str(k, def string) string {
	if v, ok := a.kv[k]; ok {
		return v
	}
	return def
}

func (a args) int(k string, def int64) (int64, error) {
	v, ok := a.kv[k]
	if !ok {
		return def, nil
	}
	var n int64
	if _, err := fmt.Sscan(v, &n); err != nil {
		return 0, fmt.Errorf("%s=%q: want an integer", k, v)
	}
	return n, nil
}
