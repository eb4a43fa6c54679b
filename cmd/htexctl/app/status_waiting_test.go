package app

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/htex/htex/wire"
)

// TestStatusShowsWaiting: why tasks wait reaches the text and the JSON of
// `htexctl status`; with none waiting, the JSON has an empty list.
func TestStatusShowsWaiting(t *testing.T) {
	why := []string{"task 7 (--nodes 4): no block has 4 pools up now (most: 2, block 3)"}
	var b strings.Builder
	saved := out
	out = &b
	defer func() { out = saved }()
	printStatus(&wire.StatusReply{Label: "x", Waiting: why})
	if !strings.Contains(b.String(), "\nwaiting: "+why[0]+"\n") {
		t.Errorf("status text lacks the waiting line:\n%s", b.String())
	}
	for _, c := range []struct {
		in   []string
		want []string
	}{{why, why}, {nil, []string{}}} {
		raw, err := json.Marshal(statusJSON(&wire.StatusReply{Waiting: c.in}))
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Waiting []string `json:"waiting"`
		}
		if err := json.Unmarshal(raw, &got); err != nil || got.Waiting == nil || !slices.Equal(got.Waiting, c.want) {
			t.Errorf("status JSON %s: waiting %q (%v), want %q", raw, got.Waiting, err, c.want)
		}
	}
}
