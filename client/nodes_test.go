package client

import (
	"context"
	"strings"
	"testing"

	"github.com/htex/htex/wire"
)

// TestSubmitChecksNodes: a multi-node request that no daemon could accept
// is refused before anything is sent (the client has no connection here).
func TestSubmitChecksNodes(t *testing.T) {
	for _, c := range []struct {
		spec *wire.TaskSpec
		err  string
	}{
		{&wire.TaskSpec{Argv: []string{"true"}, Nodes: -1}, "task 0: nodes -1: must be >= 1"},
		{&wire.TaskSpec{Argv: []string{"true"}, RanksPerNode: 2}, "task 0: ranks_per_node 2 needs nodes >= 2"},
		{&wire.TaskSpec{Argv: []string{"true"}, Nodes: 2, Gpus: 1}, "whole nodes"},
	} {
		_, err := (&Client{}).Submit(context.Background(), "", []*wire.TaskSpec{c.spec})
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("Submit(%v) = %v, want an error containing %q", c.spec, err, c.err)
		}
	}
}
