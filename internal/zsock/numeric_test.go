package zsock

import (
	"context"
	"strings"
	"testing"
)

func TestNumericHosts(t *testing.T) {
	cases := []struct {
		in      []string
		want    []string // exact, or nil when only "contains 127.0.0.1" is checked
		wantErr string
	}{
		{in: []string{"10.1.2.3", "::1", "*"}, want: []string{"10.1.2.3", "::1", "*"}},
		{in: nil, want: nil},
		{in: []string{"bad..name"}, wantErr: `resolve host "bad..name"`},
	}
	for _, c := range cases {
		got, err := NumericHosts(context.Background(), c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("NumericHosts(%q) error %v, want one containing %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("NumericHosts(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	// "localhost" comes from /etc/hosts, no DNS query leaves the machine.
	got, err := NumericHosts(context.Background(), []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range got {
		if a != "127.0.0.1" && a != "::1" {
			t.Errorf("localhost resolved to %q, want loopback numbers only", a)
		}
	}
	if len(got) == 0 {
		t.Error("localhost resolved to nothing")
	}
}
