package e2e

import (
	"context"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/htex/htex/internal/testenv"
	"github.com/htex/htex/rundir"
)

// listeners returns the addresses that listen on TCP port, from
// /proc/net/tcp and /proc/net/tcp6 (state 0A = LISTEN).
func listeners(t *testing.T, port int) []string {
	t.Helper()
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 4 || fs[3] != "0A" {
				continue
			}
			addr, p, ok := strings.Cut(fs[1], ":")
			if n, _ := strconv.ParseUint(p, 16, 16); !ok || int(n) != port {
				continue
			}
			raw, err := hex.DecodeString(addr)
			if err != nil {
				t.Fatal(err)
			}
			// the kernel prints each 32-bit word in host (little-endian) order
			for i := 0; i+4 <= len(raw); i += 4 {
				raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
			}
			out = append(out, net.IP(raw).String())
		}
	}
	slices.Sort(out)
	return out
}

// TestPortsListenWhereAdvertised: with executor.address set, the client
// and worker ports listen on it and on loopback only; by default on the
// advertised addresses, never on every interface (they used to listen on
// every IPv4 and IPv6 interface whatever address said).
func TestPortsListenWhereAdvertised(t *testing.T) {
	testenv.Integration(t)
	for _, tc := range []struct {
		name, extra string
	}{
		{"address set", `address = "127.0.0.1"`},
		{"default", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testenv.StartDaemon(t, strings.Replace(localConfig, "[executor]", "[executor]\n"+tc.extra, 1))
			conn, err := rundir.ReadConnection(d.RunDir)
			if err != nil {
				t.Fatal(err)
			}
			want := append([]string{}, conn.Addresses...)
			if !slices.Contains(want, "127.0.0.1") {
				want = append(want, "127.0.0.1")
			}
			slices.Sort(want)
			for _, port := range []int{conn.ClientPort, conn.WorkerPort} {
				got := listeners(t, port)
				if !slices.Equal(got, want) {
					t.Errorf("port %d listens on %q, want %q (advertised %q)", port, got, want, conn.Addresses)
				}
			}
			job := d.Submit("--", "true") // pools and clients still reach it
			limitsWait(t, d, job, time.Minute)
		})
	}
}

// TestPlaintextNetworkRefused: encrypted = false on addresses other than
// loopback is refused unless allow_plaintext_network = true.
func TestPlaintextNetworkRefused(t *testing.T) {
	testenv.Integration(t)
	bin := testenv.Binary(t)
	dir := t.TempDir()
	cfg := dir + "/site.toml"
	if err := os.WriteFile(cfg, []byte(strings.Replace(localConfig, "[executor]", "[executor]\nencrypted = false", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "serve", "--config", cfg, "--run-dir", dir+"/run").CombinedOutput()
	if ctx.Err() != nil || err == nil || !strings.Contains(string(out), "allow_plaintext_network") || !strings.Contains(string(out), `executor.address = "127.0.0.1"`) {
		t.Fatalf("serve with encrypted = false on the network: %v\n%s", err, out)
	}
	d := testenv.StartDaemon(t, strings.Replace(localConfig, "[executor]", "[executor]\nencrypted = false\nallow_plaintext_network = true", 1))
	if st := d.MustRun("status"); !strings.Contains(st, "encrypted false") {
		t.Fatalf("status: %s", st)
	}
}
