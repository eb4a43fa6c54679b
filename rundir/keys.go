package rundir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	zmq "github.com/pebbe/zmq4"
)

// Role names a key pair of the run.
type Role string

// The three key pairs: the daemon's, the clients' and the pools'.
const (
	Server Role = "server"
	Client Role = "client"
	Pool   Role = "pool"
)

// KeyPair is a CURVE key pair in Z85 text.
type KeyPair struct{ Public, Secret string }

// secret file: keys/<role>.key holds "public\nsecret\n" (0600);
// public file: keys/<role>.pub holds "public\n" (0600 too: the run directory
// is private to its owner).
func keyPath(dir string, r Role) string { return filepath.Join(dir, KeysDir, string(r)+".key") }
func pubPath(dir string, r Role) string { return filepath.Join(dir, KeysDir, string(r)+".pub") }

// EnsureKeys creates the three key pairs on first start and reuses them
// later. It refuses key files or folders readable by group or others.
func EnsureKeys(dir string) error {
	if !zmq.HasCurve() {
		return errors.New("this libzmq has no CURVE support (build libzmq with libsodium, or set encrypted = false)")
	}
	kd := filepath.Join(dir, KeysDir)
	if err := os.MkdirAll(kd, 0o700); err != nil {
		return fmt.Errorf("create keys folder: %w", err)
	}
	for _, r := range []Role{Server, Client, Pool} {
		if _, err := os.Stat(keyPath(dir, r)); err == nil {
			continue
		}
		pub, sec, err := zmq.NewCurveKeypair()
		if err != nil {
			return fmt.Errorf("generate %s key pair: %w", r, err)
		}
		if err := os.WriteFile(keyPath(dir, r), []byte(pub+"\n"+sec+"\n"), 0o600); err != nil {
			return fmt.Errorf("write %s key: %w", r, err)
		}
		if err := os.WriteFile(pubPath(dir, r), []byte(pub+"\n"), 0o600); err != nil {
			return fmt.Errorf("write %s public key: %w", r, err)
		}
	}
	return CheckKeyPermissions(dir)
}

// CheckKeyPermissions fails when the keys folder or a key file is open to
// group or others, and says how to fix it.
func CheckKeyPermissions(dir string) error {
	kd := filepath.Join(dir, KeysDir)
	paths := []string{kd}
	entries, err := os.ReadDir(kd)
	if err != nil {
		return fmt.Errorf("read keys folder: %w", err)
	}
	for _, e := range entries {
		paths = append(paths, filepath.Join(kd, e.Name()))
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o077 != 0 {
			return fmt.Errorf("%s is readable by group or others (mode %04o): run `chmod -R go-rwx %s` and start again", p, st.Mode().Perm(), kd)
		}
	}
	return nil
}

// LoadKeyPair reads the key pair of a role.
func LoadKeyPair(dir string, r Role) (KeyPair, error) {
	b, err := os.ReadFile(keyPath(dir, r))
	if err != nil {
		return KeyPair{}, fmt.Errorf("read %s key: %w", r, err)
	}
	lines := strings.Fields(string(b))
	if len(lines) != 2 || len(lines[0]) != 40 || len(lines[1]) != 40 {
		return KeyPair{}, fmt.Errorf("%s: not a key file (want two Z85 lines)", keyPath(dir, r))
	}
	return KeyPair{Public: lines[0], Secret: lines[1]}, nil
}

// LoadPublicKey reads the public key of a role.
func LoadPublicKey(dir string, r Role) (string, error) {
	b, err := os.ReadFile(pubPath(dir, r))
	if err != nil {
		return "", fmt.Errorf("read %s public key: %w", r, err)
	}
	k := strings.TrimSpace(string(b))
	if len(k) != 40 {
		return "", fmt.Errorf("%s: not a public key", pubPath(dir, r))
	}
	return k, nil
}
