package app

import (
	"slices"
	"testing"
)

func TestReorderArgs(t *testing.T) {
	cmds := commands()
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"results flag after the job", []string{"htexctl", "results", "7", "--json"}, []string{"htexctl", "results", "--json", "7"}},
		{"flag with a value after the job", []string{"htexctl", "wait", "7", "--run-dir", "/r"}, []string{"htexctl", "wait", "--run-dir", "/r", "7"}},
		{"flag=value", []string{"htexctl", "cancel", "7", "--run-dir=/r"}, []string{"htexctl", "cancel", "--run-dir=/r", "7"}},
		{"already in order", []string{"htexctl", "results", "--failed", "7"}, []string{"htexctl", "results", "--failed", "7"}},
		{"after --, as typed", []string{"htexctl", "results", "--", "7", "--json"}, []string{"htexctl", "results", "--", "7", "--json"}},
		{"submit untouched", []string{"htexctl", "submit", "./app", "--input", "x"}, []string{"htexctl", "submit", "./app", "--input", "x"}},
		{"subcommand", []string{"htexctl", "config", "check", "site.toml", "--help"}, []string{"htexctl", "config", "check", "--help", "site.toml"}},
		{"unknown verb untouched", []string{"htexctl", "nosuch", "x", "--y"}, []string{"htexctl", "nosuch", "x", "--y"}},
		{"value flag last without value", []string{"htexctl", "wait", "7", "--run-dir"}, []string{"htexctl", "wait", "7", "--run-dir"}},
		{"a lone dash is an argument", []string{"htexctl", "results", "-", "--json"}, []string{"htexctl", "results", "--json", "-"}},
		{"no verb", []string{"htexctl"}, []string{"htexctl"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := reorderArgs(cmds, tt.args); !slices.Equal(got, tt.want) {
				t.Fatalf("reorderArgs(%q) = %q, want %q", tt.args, got, tt.want)
			}
		})
	}
}
