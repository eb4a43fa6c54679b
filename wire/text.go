package wire

import "unicode/utf8"

// A protobuf string must be valid UTF-8, but argv, env and cwd are bytes
// on Linux (a file name may hold any byte but NUL and '/'). A task's argv,
// env and cwd therefore travel in the string fields when they are valid
// UTF-8, and in the *_raw bytes fields otherwise; these accessors hide the
// choice, so that a task gets exactly the bytes its user typed.

// packStrings returns ss for a string field when every element is valid
// UTF-8, else for a bytes field.
func packStrings(ss []string) ([]string, [][]byte) {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			raw := make([][]byte, len(ss))
			for i, s := range ss {
				raw[i] = []byte(s)
			}
			return nil, raw
		}
	}
	return ss, nil
}

// unpackStrings reverses packStrings.
func unpackStrings(ss []string, raw [][]byte) []string {
	if len(raw) == 0 {
		return ss
	}
	out := make([]string, len(raw))
	for i, b := range raw {
		out[i] = string(b)
	}
	return out
}

func packString(s string) (string, []byte) {
	if utf8.ValidString(s) {
		return s, nil
	}
	return "", []byte(s)
}

func unpackString(s string, raw []byte) string {
	if len(raw) > 0 {
		return string(raw)
	}
	return s
}

// Args is the task's argv, whichever field holds it.
func (t *TaskSpec) Args() []string { return unpackStrings(t.GetArgv(), t.GetArgvRaw()) }

// Envs is the task's env additions (K=V), whichever field holds them.
func (t *TaskSpec) Envs() []string { return unpackStrings(t.GetEnv(), t.GetEnvRaw()) }

// Dir is the task's working directory, whichever field holds it.
func (t *TaskSpec) Dir() string { return unpackString(t.GetCwd(), t.GetCwdRaw()) }

// SetArgs stores argv exactly.
func (t *TaskSpec) SetArgs(argv []string) { t.Argv, t.ArgvRaw = packStrings(argv) }

// SetEnvs stores the env additions exactly.
func (t *TaskSpec) SetEnvs(env []string) { t.Env, t.EnvRaw = packStrings(env) }

// SetDir stores the working directory exactly.
func (t *TaskSpec) SetDir(dir string) { t.Cwd, t.CwdRaw = packString(dir) }

// Args is the task's argv, whichever field holds it.
func (t *Task) Args() []string { return unpackStrings(t.GetArgv(), t.GetArgvRaw()) }

// Envs is the task's env additions (K=V), whichever field holds them.
func (t *Task) Envs() []string { return unpackStrings(t.GetEnv(), t.GetEnvRaw()) }

// Dir is the task's working directory, whichever field holds it.
func (t *Task) Dir() string { return unpackString(t.GetCwd(), t.GetCwdRaw()) }

// Args is the task's argv, whichever field holds it.
func (r *TaskResult) Args() []string { return unpackStrings(r.GetArgv(), r.GetArgvRaw()) }

// SetArgs stores argv exactly.
func (r *TaskResult) SetArgs(argv []string) { r.Argv, r.ArgvRaw = packStrings(argv) }

// SetArgs stores argv exactly.
func (t *Task) SetArgs(argv []string) { t.Argv, t.ArgvRaw = packStrings(argv) }

// SetEnvs stores the env additions exactly.
func (t *Task) SetEnvs(env []string) { t.Env, t.EnvRaw = packStrings(env) }

// SetDir stores the working directory exactly.
func (t *Task) SetDir(dir string) { t.Cwd, t.CwdRaw = packString(dir) }
