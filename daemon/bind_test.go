package daemon

import (
	"slices"
	"strings"
	"testing"
)

func TestBindHosts(t *testing.T) {
	tests := []struct {
		advertised, want []string
	}{
		{[]string{"10.0.0.5", "127.0.0.1"}, []string{"10.0.0.5", "127.0.0.1"}},
		{[]string{"10.0.0.5"}, []string{"10.0.0.5", "127.0.0.1"}},
		{[]string{"192.0.2.2", "fd00::2", "127.0.0.1", "192.0.2.2"}, []string{"192.0.2.2", "fd00::2", "127.0.0.1"}},
		{nil, []string{"127.0.0.1"}},
	}
	for _, tt := range tests {
		if got := bindHosts(tt.advertised); !slices.Equal(got, tt.want) {
			t.Errorf("bindHosts(%q) = %q, want %q", tt.advertised, got, tt.want)
		}
	}
}

func TestCheckPlaintext(t *testing.T) {
	tests := []struct {
		name             string
		encrypted, allow bool
		hosts            []string
		want             string // "" = accepted
	}{
		{"encrypted anywhere", true, false, []string{"10.0.0.5", "127.0.0.1"}, ""},
		{"plain on loopback", false, false, []string{"127.0.0.1", "::1"}, ""},
		{"plain on the network", false, false, []string{"10.0.0.5", "127.0.0.1"}, "listen on 10.0.0.5"},
		{"plain on every interface", false, false, []string{"*"}, "listen on *"},
		{"plain on the network, allowed", false, true, []string{"10.0.0.5"}, ""},
	}
	for _, tt := range tests {
		err := checkPlaintext(tt.encrypted, tt.allow, tt.hosts)
		if (tt.want == "") != (err == nil) || (err != nil && (!strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "allow_plaintext_network"))) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}
