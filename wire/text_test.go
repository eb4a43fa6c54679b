package wire

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
)

// TestTextFieldsExact: argv, env and cwd of any bytes survive a round trip
// through the codec; valid UTF-8 uses the string fields (as version 1
// peers expect), anything else the bytes fields.
func TestTextFieldsExact(t *testing.T) {
	tests := []struct {
		name    string
		argv    []string
		env     []string
		cwd     string
		wantRaw bool
	}{
		{"utf-8", []string{"echo", "héllo"}, []string{"A=1"}, "/tmp/x", false},
		{"latin-1 file name", []string{"cat", "caf\xe9.txt"}, nil, "/tmp", true},
		{"env value", []string{"true"}, []string{"X=\xff"}, "", true},
		{"cwd", []string{"pwd"}, nil, "/tmp/d\xfe", true},
		{"NUL-free control bytes", []string{"printf", "\x01\x7f\x80"}, nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &TaskSpec{}
			s.SetArgs(tt.argv)
			s.SetEnvs(tt.env)
			s.SetDir(tt.cwd)
			raw := len(s.ArgvRaw)+len(s.EnvRaw)+len(s.CwdRaw) > 0
			if raw != tt.wantRaw {
				t.Fatalf("bytes fields used: %v, want %v", raw, tt.wantRaw)
			}
			m, err := Decode(MustEncode(&Envelope{Body: &Envelope_Submit{Submit: &SubmitRequest{Tasks: []*TaskSpec{s}}}}))
			if err != nil {
				t.Fatal(err)
			}
			got := m.GetSubmit().Tasks[0]
			if !slices.Equal(got.Args(), tt.argv) || !slices.Equal(got.Envs(), tt.env) || got.Dir() != tt.cwd {
				t.Fatalf("got %q %q %q", got.Args(), got.Envs(), got.Dir())
			}
			task := &Task{Argv: got.Argv, Env: got.Env, Cwd: got.Cwd, ArgvRaw: got.ArgvRaw, EnvRaw: got.EnvRaw, CwdRaw: got.CwdRaw}
			b, err := proto.Marshal(task)
			if err != nil {
				t.Fatal(err)
			}
			back := &Task{}
			if err := proto.Unmarshal(b, back); err != nil || !slices.Equal(back.Args(), tt.argv) || !slices.Equal(back.Envs(), tt.env) || back.Dir() != tt.cwd {
				t.Fatalf("Task: %q %q %q, %v", back.Args(), back.Envs(), back.Dir(), err)
			}
			r := &TaskResult{}
			r.SetArgs(tt.argv)
			if !slices.Equal(r.Args(), tt.argv) {
				t.Fatalf("TaskResult: %q", r.Args())
			}
		})
	}
}
