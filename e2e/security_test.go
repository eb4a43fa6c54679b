package e2e

// Encrypted and authenticated by default: real daemons with the default
// encrypted = true, and clients and pools that hold the wrong keys (another
// run's, the pool key on the client channel, the client key on the worker
// channel, plain text against CURVE). Each must be turned away with a clear
// message, run nothing, and leave the daemon serving its owner.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/htex/htex/internal/testenv"
)

// secNoBlockConfig is a daemon that starts no block: the only pools are
// the ones a test starts by hand.
const secNoBlockConfig = `
[executor]
max_workers_per_node = 2
cores_per_worker = 0.01
heartbeat_period = 1
heartbeat_threshold = 5
[provider]
kind = "local"
init_blocks = 0
[strategy]
kind = "none"
`

// secConnection reads a run directory's connection file as a generic map,
// so that a test can change one field and write it elsewhere.
func secConnection(t *testing.T, dir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "connection.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// secFakeRunDir builds a run directory (0700) holding the given connection
// file and a copy of keysFrom's keys/ (0700, files 0600), as someone who
// copied files between runs would.
func secFakeRunDir(t *testing.T, conn map[string]any, keysFrom string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(conn)
	if err := os.WriteFile(filepath.Join(dir, "connection.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(keysFrom, "keys", "*"))
	if len(files) != 6 {
		t.Fatalf("%s/keys holds %d files, want 6 (three key pairs)", keysFrom, len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "keys", filepath.Base(f)), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// secCopyKey overwrites keys/<dst>.key (and .pub) with keys/<src>.key.
func secCopyKey(t *testing.T, dir, src, dst string) {
	t.Helper()
	for _, ext := range []string{".key", ".pub"} {
		data, err := os.ReadFile(filepath.Join(dir, "keys", src+ext))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "keys", dst+ext), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// secSecrets returns the secret half of every key pair of a run.
func secSecrets(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, role := range []string{"server", "client", "pool"} {
		b, err := os.ReadFile(filepath.Join(dir, "keys", role+".key"))
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(b))
		if len(f) != 2 || len(f[1]) != 40 {
			t.Fatalf("keys/%s.key: want a public and a secret Z85 line, got %d fields", role, len(f))
		}
		out[role] = f[1]
	}
	return out
}

// secWrongKeys lists the ways to hold the wrong keys for daemon own, with
// other a second daemon (another run). Each returns a run directory whose
// connection file points at own's ports.
func secWrongKeys(t *testing.T, own, other *testenv.Daemon) []struct {
	name string
	dir  string
	want []string // in the client's one-line error
} {
	ownConn, otherConn := secConnection(t, own.RunDir), secConnection(t, other.RunDir)

	withOtherServerKey := maps.Clone(ownConn)
	withOtherServerKey["server_public_key"] = otherConn["server_public_key"]
	otherRun := secFakeRunDir(t, withOtherServerKey, other.RunDir)

	foreignClient := secFakeRunDir(t, maps.Clone(ownConn), other.RunDir)

	poolAsClient := secFakeRunDir(t, maps.Clone(ownConn), own.RunDir)
	secCopyKey(t, poolAsClient, "pool", "client")

	plain := maps.Clone(ownConn)
	plain["encrypted"] = false
	delete(plain, "server_public_key")
	plainText := secFakeRunDir(t, plain, own.RunDir)

	return []struct {
		name string
		dir  string
		want []string
	}{
		{"another run's keys and server key", otherRun, []string{"rejected", "handshake", otherRun + "/keys", "may not belong to this daemon"}},
		{"right server key, another run's client key", foreignClient, []string{"rejected", "refused this client's key", foreignClient + "/keys", "may not belong to this daemon"}},
		{"pool key on the client channel", poolAsClient, []string{"rejected", "refused this client's key", "pool keys cannot submit"}},
		{"plain text against an encrypted daemon", plainText, []string{"rejected", "plain-text", "encrypted=false"}},
	}
}

// TestWrongKeysCannotSubmit: a client with another run's keys, a foreign
// client key, the pool key, or no encryption at all gets exit 2 and a
// message about the keys, no task of it runs, and the daemon goes on
// serving its owner.
func TestWrongKeysCannotSubmit(t *testing.T) {
	testenv.Integration(t)
	own := testenv.StartDaemon(t, localConfig)
	other := testenv.StartDaemon(t, localConfig)
	marker := filepath.Join(t.TempDir(), "ran")

	for _, c := range secWrongKeys(t, own, other) {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := testenv.RunBin(own.Bin, nil, "submit", "--run-dir", c.dir, "--wait", "--",
				"sh", "-c", "echo x >> "+marker)
			bbOneLine(t, "submit", stdout, stderr, code, c.want...)
			if strings.Contains(stderr, "is `htexctl serve` running?") {
				t.Errorf("the error blames a missing daemon instead of the keys: %s", stderr)
			}
			// status is refused the same way
			stdout, stderr, code = testenv.RunBin(own.Bin, nil, "status", "--run-dir", c.dir)
			bbOneLine(t, "status", stdout, stderr, code, c.want...)
		})
	}

	st := resumeStatusOf(t, own)
	if st.Jobs != 0 || st.Queued != 0 || st.Running != 0 {
		t.Errorf("the daemon took work from clients with the wrong keys: %+v", st)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("a task of a client with the wrong keys ran")
	}
	// the owner is still served
	job := own.Submit("--wait", "--", "sh", "-c", "echo owner >> "+marker)
	if got, _ := os.ReadFile(marker); string(got) != "owner\n" {
		t.Errorf("after the refusals, the owner's task wrote %q, want %q (job %s)", got, "owner\n", job)
	}
}

// TestWrongKeysPoolGetsNoTasks: `htexctl worker` with another run's pool
// key, the client key in place of the pool key, or another run's server key
// fails with a clear message and receives no task; the tasks stay queued
// and run once the legitimate pool joins.
func TestWrongKeysPoolGetsNoTasks(t *testing.T) {
	testenv.Integration(t)
	own := testenv.StartDaemon(t, secNoBlockConfig)
	other := testenv.StartDaemon(t, localConfig)
	marks := t.TempDir()
	job := own.Submit("--array", "1-5", "--", "sh", "-c", "touch "+marks+"/{}")

	ownConn, otherConn := secConnection(t, own.RunDir), secConnection(t, other.RunDir)
	clientAsPool := secFakeRunDir(t, maps.Clone(ownConn), own.RunDir)
	secCopyKey(t, clientAsPool, "client", "pool")
	withOtherServerKey := maps.Clone(ownConn)
	withOtherServerKey["server_public_key"] = otherConn["server_public_key"]
	cases := []struct {
		name string
		dir  string
		want []string
	}{
		{"another run's pool key", secFakeRunDir(t, maps.Clone(ownConn), other.RunDir), []string{"refused our key", "pool key", "keys"}},
		{"client key on the worker channel", clientAsPool, []string{"refused our key", "pool key", "keys"}},
		{"another run's keys and server key", secFakeRunDir(t, withOtherServerKey, other.RunDir), []string{"handshake", "failed", "keys"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := testenv.RunBin(own.Bin, nil, "worker", "--run-dir", c.dir, "--block-id", "7")
			if code != 1 {
				t.Errorf("worker: exit %d, want 1\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			for _, w := range append(c.want, "refused by the interchange", c.dir) {
				if !strings.Contains(stderr, w) {
					t.Errorf("worker: stderr does not name %q:\n%s", w, stderr)
				}
			}
		})
	}

	st := resumeStatusOf(t, own)
	if st.Queued != 5 || st.Running != 0 || len(st.Pools) != 0 {
		t.Fatalf("after the refused pools: %+v, want 5 queued, none running, no pool", st)
	}
	if left, _ := os.ReadDir(marks); len(left) != 0 {
		t.Fatalf("%d tasks ran on a pool with the wrong keys", len(left))
	}

	// The legitimate pool (own run directory, own pool key) gets them.
	pool := exec.Command(own.Bin, "worker", "--run-dir", own.RunDir, "--block-id", "7")
	pool.Stderr = os.Stderr
	if err := pool.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Process.Signal(syscall.SIGKILL); pool.Wait() })
	if code := own.WaitJob(job); code != 0 {
		t.Fatalf("wait %s: exit %d\n%s", job, code, testenv.Tail(own.Log(), 30))
	}
	for _, r := range own.Results(job) {
		if r.State != "succeeded" || r.Attempts != 1 || r.BlockID != 7 {
			t.Errorf("task %d: %+v, want succeeded once on the pool of block 7", r.TaskID, r)
		}
	}
	if ran, _ := os.ReadDir(marks); len(ran) != 5 {
		t.Errorf("%d of 5 tasks ran on the legitimate pool", len(ran))
	}
}

// TestKeyFilesPrivate: the run directory and keys/ are 0700 and every key
// file 0600; no secret key is in connection.json, the rendered batch
// script, or the pool's or the daemon's command line and environment. With
// a key file open to others, the daemon refuses to start and says to chmod.
func TestKeyFilesPrivate(t *testing.T) {
	testenv.Integration(t)
	d := testenv.StartDaemon(t, localConfig)
	d.Submit("--wait", "--", "true") // a pool has run a task: its block exists

	for path, want := range map[string]os.FileMode{d.RunDir: 0o700, filepath.Join(d.RunDir, "keys"): 0o700} {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %04o", path, st.Mode().Perm(), err, want)
		}
	}
	files, _ := filepath.Glob(filepath.Join(d.RunDir, "keys", "*"))
	if len(files) != 6 {
		t.Errorf("keys/ holds %v, want server, client and pool .key and .pub", files)
	}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", f, st.Mode().Perm(), err)
		}
	}

	secrets := secSecrets(t, d.RunDir)
	places := map[string]string{}
	for _, name := range []string{"connection.json", "blocks/1/submit.sh"} {
		b, err := os.ReadFile(filepath.Join(d.RunDir, name))
		if err != nil {
			t.Fatal(err)
		}
		places[name] = string(b)
	}
	pools := secProcesses(t, "worker", d.RunDir)
	if len(pools) == 0 {
		t.Fatalf("no `htexctl worker` process for %s", d.RunDir)
	}
	for _, pid := range append(pools, d.Pid()) {
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
			if err != nil {
				t.Fatal(err)
			}
			places[fmt.Sprintf("/proc/%d/%s", pid, f)] = string(b)
		}
	}
	for where, text := range places {
		for role, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("the %s secret key appears in %s", role, where)
			}
		}
	}
	if conn := secConnection(t, d.RunDir); conn["encrypted"] != true || conn["server_public_key"] == "" {
		t.Errorf("connection.json: encrypted %v, server_public_key %v; want true and the public key", conn["encrypted"], conn["server_public_key"])
	}

	// A key readable by others: the daemon refuses to start and says how
	// to fix it.
	d.Stop()
	key := filepath.Join(d.RunDir, "keys", "server.key")
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := testenv.RunBin(d.Bin, nil, "serve", "--config", d.Config, "--run-dir", d.RunDir)
	if code == 0 || code == -1 {
		t.Fatalf("serve with keys/server.key 0644: exit %d, want a refusal\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	for _, w := range []string{key, "chmod", "readable by group or others"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("serve's refusal does not name %q:\n%s", w, stderr)
		}
	}
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	d.Start()
	d.Submit("--wait", "--", "true")
}

// secProcesses lists the pids of processes whose command line holds the
// verb and the run directory.
// isPool reports whether an `htexctl worker` process is the pool itself
// rather than the supervisor that started it.
func isPool(pid int) bool {
	env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	return bytes.Contains(env, []byte("\x00HTEX_POOL_SUPERVISED=1\x00")) || bytes.HasPrefix(env, []byte("HTEX_POOL_SUPERVISED=1\x00"))
}

func secProcesses(t *testing.T, verb, runDir string) []int {
	t.Helper()
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 2 && strings.HasSuffix(args[0], "htexctl") && args[1] == verb && strings.Contains(string(b), runDir) {
			if verb == "worker" && !isPool(pid) {
				continue // the pool's supervisor (worker/supervise.go)
			}
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestUnencryptedWarns: encrypted = false is an explicit opt-out that the
// daemon warns about at start (daemon.log) and in status, text and JSON;
// the default says nothing of the sort.
func TestUnencryptedWarns(t *testing.T) {
	testenv.Integration(t)
	plain := testenv.StartDaemon(t, strings.Replace(localConfig, "[executor]", "[executor]\nencrypted = false\naddress = \"127.0.0.1\"", 1))
	enc := testenv.StartDaemon(t, localConfig)
	const warning = "encryption is off"

	log, err := os.ReadFile(filepath.Join(plain.RunDir, "daemon.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "level=WARN") || !strings.Contains(string(log), warning) {
		t.Errorf("daemon.log has no warning about encryption:\n%s", log)
	}
	if text := plain.MustRun("status"); !strings.Contains(text, "WARNING: "+warning) || !strings.Contains(text, "encrypted false") {
		t.Errorf("status does not warn:\n%s", text)
	}
	if st := resumeStatusOf(t, plain); st.Encrypted || !strings.Contains(st.Warning, warning) {
		t.Errorf("status --json: encrypted %v, warning %q", st.Encrypted, st.Warning)
	}
	if conn := secConnection(t, plain.RunDir); conn["encrypted"] != false || conn["server_public_key"] != nil {
		t.Errorf("connection.json of a plain daemon: encrypted %v, server_public_key %v", conn["encrypted"], conn["server_public_key"])
	}
	plain.Submit("--wait", "--", "true")

	log, _ = os.ReadFile(filepath.Join(enc.RunDir, "daemon.log"))
	if strings.Contains(string(log), warning) {
		t.Errorf("the encrypted daemon warns about encryption:\n%s", log)
	}
	if st := resumeStatusOf(t, enc); !st.Encrypted || st.Warning != "" {
		t.Errorf("status --json of the default daemon: encrypted %v, warning %q", st.Encrypted, st.Warning)
	}
}
