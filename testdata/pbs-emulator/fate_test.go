package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseSteps(t *testing.T) {
	s := time.Second
	for _, c := range []struct {
		spec string
		want []step
		err  string
	}{
		{spec: "", want: nil},
		{spec: "T:1s,Q,R", want: []step{{"T", s}, {"Q", 0}, {"R", 0}}},
		{spec: "W:0.5,Q:2s", want: []step{{"W", s / 2}, {"Q", 2 * s}}},
		{spec: "H", want: []step{{"H", 0}}},
		{spec: "R:1s,S:2s,R,E:1s,gone", want: []step{{"R", s}, {"S", 2 * s}, {"R", 0}, {"E", s}, {goneStep, 0}}},
		{spec: "B", want: []step{{"B", 0}}},
		{spec: "E:1s", want: []step{{"R", 0}, {"E", s}}},
		{spec: "Q:1s,M", want: []step{{"Q", s}, {"M", 0}}},
		{spec: "gone", want: []step{{goneStep, 0}}},
		{spec: "X", err: "is not one of"},
		{spec: "T", err: "needs a duration"},
		{spec: "S:1s", err: "must follow R or B"},
		{spec: "R,Q", err: "must come before the run"},
		{spec: "M,R", err: "M or gone must be last"},
		{spec: "gone,Q", err: "M or gone must be last"},
		{spec: "R,E:1s,E:1s", err: "given twice"},
		{spec: "R,E:1s,S:1s", err: "must follow R or B"},
		{spec: "Q:-1s", err: "bad duration"},
		{spec: "H:1s", err: "takes no duration"},
	} {
		got, err := parseSteps(c.spec)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseSteps(%q) = %v, %v; want error %q", c.spec, got, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseSteps(%q) = %v, %v; want %v", c.spec, got, err, c.want)
		}
	}
}

func TestPlanOf(t *testing.T) {
	s := time.Second
	for _, c := range []struct {
		spec string
		want lifePlan
	}{
		{"", lifePlan{before: []step{{"Q", 3 * s}}, running: []step{{"R", 0}}}},
		{"T:1s,Q", lifePlan{before: []step{{"T", s}, {"Q", 3 * s}}, running: []step{{"R", 0}}}},
		{"R:1s,S:1s,R,E:2s,gone", lifePlan{running: []step{{"R", s}, {"S", s}, {"R", 0}}, exiting: 2 * s, gone: true}},
		{"Q:1s,M", lifePlan{before: []step{{"Q", s}, {"M", 0}}}},
		{"gone", lifePlan{before: []step{{goneStep, 0}}}},
		{"H", lifePlan{before: []step{{"H", 0}}, running: []step{{"R", 0}}}},
	} {
		steps, err := parseSteps(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		got := planOf(&Job{Steps: steps, StartDelay: 3 * s})
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("planOf(%q) = %+v, want %+v", c.spec, got, c.want)
		}
	}
}

func TestStrictCheck(t *testing.T) {
	job := func(account, queue string, nodes, walltime int, fs string) *Job {
		j := &Job{Account: account, Queue: queue, NodeCount: nodes, Walltime: walltime, Resources: map[string]string{}}
		if fs != "" {
			j.Resources["filesystems"] = fs
		}
		return j
	}
	for _, c := range []struct {
		name, mode    string
		routeAtSubmit bool
		job           *Job
		wantMsg       string
		wantCode      int
		wantSteps     []step
	}{
		{name: "lenient", mode: "", job: job("", "", 2, 0, "")},
		{name: "no account", mode: "polaris", job: job("", "debug", 1, 3600, "home:eagle"), wantMsg: msgNoAccount, wantCode: exitHookReject},
		{name: "no filesystems", mode: "aurora", job: job("P", "debug", 1, 3600, ""), wantMsg: msgNoFilesystems, wantCode: exitHookReject},
		{name: "unknown queue", mode: "polaris", job: job("P", "workq", 1, 3600, "home"), wantMsg: "Unknown queue", wantCode: exitUnknownQ},
		{name: "debug fits", mode: "polaris", job: job("P", "debug", 2, 3600, "home")},
		{name: "debug 3 nodes", mode: "polaris", job: job("P", "debug", 3, 3600, "home"), wantMsg: msgQueueLimit, wantCode: exitQueueLimit},
		{name: "polaris prod 2 nodes", mode: "polaris", job: job("P", "prod", 2, 3600, "home"), wantMsg: msgQueueLimit, wantCode: exitQueueLimit},
		{name: "aurora prod 2 nodes", mode: "aurora", job: job("P", "prod", 2, 3600, "flare"), wantMsg: msgQueueLimit, wantCode: exitQueueLimit},
		{name: "prod unroutable vanishes", mode: "polaris", job: job("P", "prod", 10, 24*3600, "home"), wantSteps: []step{{State: goneStep}}},
		{name: "prod unroutable refused at submit", mode: "polaris", routeAtSubmit: true, job: job("P", "prod", 10, 24*3600, "home"), wantMsg: msgRouteReject, wantCode: exitRouteReject},
		{name: "prod fits", mode: "aurora", job: job("P", "prod", 256, 3600, "flare")},
		{name: "bad mode", mode: "summit", job: job("P", "prod", 1, 60, "x"), wantMsg: "PBS_EMULATOR_STRICT"},
	} {
		t.Run(c.name, func(t *testing.T) {
			steps, err := strictCheck(c.mode, c.routeAtSubmit, c.job)
			var r *refusal
			switch {
			case c.wantMsg == "" && err != nil:
				t.Fatalf("err %v", err)
			case c.wantCode != 0 && (!errors.As(err, &r) || r.msg != c.wantMsg || r.code != c.wantCode):
				t.Fatalf("err %#v, want refusal %q exit %d", err, c.wantMsg, c.wantCode)
			case c.wantMsg != "" && (err == nil || !strings.Contains(err.Error(), c.wantMsg)):
				t.Fatalf("err %v, want %q", err, c.wantMsg)
			}
			if !reflect.DeepEqual(steps, c.wantSteps) {
				t.Errorf("steps %v, want %v", steps, c.wantSteps)
			}
		})
	}
}
