package daemon

import (
	"testing"
	"time"
)

func TestDecideLease(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	me := lease{Host: "login1", BootID: "b1", Pid: 100, Token: "mine"}
	other := func(host, boot string, beatAgo time.Duration) *lease {
		return &lease{Host: host, BootID: boot, Pid: 7, Token: "theirs", Since: now.Add(-time.Hour), Beat: now.Add(-beatAgo)}
	}
	cases := []struct {
		name     string
		cur      *lease
		lockHeld bool
		take     bool
	}{
		{"no lease", nil, true, true},
		{"our own", &lease{Token: "mine"}, true, true},
		{"same host, holder gone (lock free)", other("login1", "b1", time.Second), true, true},
		{"same host, lock not supported, fresh", other("login1", "b1", time.Second), false, false},
		{"same host, rebooted since", other("login1", "b0", time.Second), false, true},
		{"other host, fresh", other("login2", "x", 10*time.Second), true, false},
		{"other host, just under ttl", other("login2", "x", leaseTTL-time.Second), true, false},
		{"other host, expired", other("login2", "x", leaseTTL+time.Second), true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := decideLease(tc.cur, me, now, leaseTTL, tc.lockHeld)
			if v.Take != tc.take {
				t.Fatalf("decideLease = %+v, want take=%v", v, tc.take)
			}
			if !v.Take && v.Why == "" {
				t.Fatal("a refusal must say who holds the lease")
			}
		})
	}
}
