package app

import (
	"fmt"
	"math"

	"github.com/urfave/cli/v2"

	"github.com/htex/htex/wire"
)

// nodeFlags sets a submission's multi-node fields from --nodes and
// --ranks-per-node (docs/mpi-tasks.md): --nodes N >= 1 (1 = an ordinary
// task), --ranks-per-node R >= 1, only with --nodes of 2 or more.
func nodeFlags(c *cli.Context, s *wire.TaskSpec) error {
	nodesSet, ranksSet := c.IsSet("nodes"), c.IsSet("ranks-per-node")
	n, r := c.Int("nodes"), c.Int("ranks-per-node")
	if nodesSet && (n < 1 || n > math.MaxInt32) {
		return fmt.Errorf("--nodes %d: must be >= 1", n)
	}
	if ranksSet && (r < 1 || r > math.MaxInt32) {
		return fmt.Errorf("--ranks-per-node %d: must be >= 1", r)
	}
	if ranksSet && n < 2 {
		return fmt.Errorf("--ranks-per-node %d needs --nodes 2 or more (a task of one node starts its own ranks)", r)
	}
	if n < 2 {
		return nil
	}
	s.Nodes, s.RanksPerNode = int32(n), int32(max(r, 1))
	if err := wire.CheckNodes(s); err != nil {
		return fmt.Errorf("--nodes %d --ranks-per-node %d: %w", n, max(r, 1), err)
	}
	return nil
}
