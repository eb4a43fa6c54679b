package daemon

import (
	"fmt"
	"net"
	"slices"
	"strings"
)

// bindHosts are the addresses the client and worker ports listen on: those
// advertised to pools and clients (executor.address, or every non-loopback
// address of the host), and loopback, where a client on the daemon's own
// host connects. Nothing else: a port on an interface nobody was told of
// is only a door left open.
func bindHosts(advertised []string) []string {
	hosts := []string{}
	for _, a := range advertised {
		if !slices.Contains(hosts, a) {
			hosts = append(hosts, a)
		}
	}
	if !slices.Contains(hosts, "127.0.0.1") {
		hosts = append(hosts, "127.0.0.1")
	}
	return hosts
}

// checkPlaintext refuses encrypted = false on any address that is not
// loopback, unless allow_plaintext_network says the network is trusted:
// without CURVE anyone who reaches the ports can submit tasks (they run
// as the user) or pose as a pool.
func checkPlaintext(encrypted, allow bool, hosts []string) error {
	if encrypted || allow {
		return nil
	}
	var open []string
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			open = append(open, h)
		}
	}
	if len(open) == 0 {
		return nil
	}
	return fmt.Errorf("executor.encrypted = false, and the ports would listen on %s, where anyone who reaches them can run tasks as you: "+
		"set executor.address = \"127.0.0.1\" to keep them on this host, or executor.allow_plaintext_network = true if this network is trusted",
		strings.Join(open, ", "))
}
