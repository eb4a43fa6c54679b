package app

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runApp runs the CLI in this process and returns what it printed.
func runApp(t *testing.T, args ...string) string {
	t.Helper()
	var b bytes.Buffer
	saved := out
	out = &b
	defer func() { out = saved }()
	if err := New().Run(append([]string{"htexctl"}, args...)); err != nil {
		t.Fatalf("htexctl %s: %v", strings.Join(args, " "), err)
	}
	return b.String()
}

func TestCompletionScripts(t *testing.T) {
	fish := runApp(t, "completion", "fish")
	for _, verb := range []string{"serve", "submit", "wait", "top", "logs", "completion", "man"} {
		if !strings.Contains(fish, "complete -c htexctl") || !strings.Contains(fish, "-a '"+verb+"'") {
			t.Errorf("fish completion lacks the verb %s", verb)
		}
	}
	if !strings.Contains(fish, "-l follow") {
		t.Errorf("fish completion lacks logs --follow")
	}
	if z := runApp(t, "completion", "zsh"); !strings.HasPrefix(z, "#compdef htexctl\n") {
		t.Errorf("zsh completion does not start with #compdef htexctl: %q", z[:min(len(z), 40)])
	}
}

// TestBashCompletionInBash sources the bash script in a real bash and asks
// it to complete, as the shell does on Tab.
func TestBashCompletionInBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "htexctl")
	build := exec.Command("go", "build", "-o", bin, "github.com/htex/htex/cmd/htexctl")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	script := filepath.Join(t.TempDir(), "htexctl.bash")
	if err := os.WriteFile(script, []byte(runApp(t, "completion", "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		words string
		want  string
	}{
		{"htexctl lo", "logs"},
		{"htexctl t", "top"},
		{"htexctl logs --fo", "--follow"},
		{"htexctl serve --met", "--metrics"},
		{"htexctl wait --j", "--json"},
	} {
		prog := `source "$1"; COMP_WORDS=(` + tc.words + `); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _htexctl_complete; printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command(bash, "--norc", "-c", prog, "bash", script)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.words, err, b)
		}
		if got := strings.TrimSpace(string(b)); got != tc.want {
			t.Errorf("completing %q: %q, want %q", tc.words, got, tc.want)
		}
	}
}

func TestManPage(t *testing.T) {
	page := runApp(t, "man")
	if !strings.HasPrefix(page, ".nh\n.TH htexctl 1") {
		t.Errorf("man page header: %q", page[:min(len(page), 40)])
	}
	for _, want := range []string{"top", "logs", "--metrics", "completion", "--follow"} {
		if !strings.Contains(page, want) {
			t.Errorf("man page lacks %q", want)
		}
	}
	man, err := exec.LookPath("man")
	if err != nil {
		return // the roff is checked above; rendering needs man-db
	}
	cmd := exec.Command(man, "-l", "-")
	cmd.Stdin = strings.NewReader(page)
	cmd.Env = append(os.Environ(), "MANPAGER=cat", "PAGER=cat", "MANWIDTH=80")
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("man -l: %v", err)
	}
	if !strings.Contains(string(b), "htexctl - run many tasks on Slurm and PBS clusters") {
		t.Errorf("rendered man page lacks its NAME line:\n%s", b[:min(len(b), 400)])
	}
}
