package wire

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Task fields of a multi-node task (wire.proto: Task.mpi_nodes = 19,
// Task.ranks_per_node = 20), chosen at dispatch rather than at submit.
const (
	fieldTaskMpiNodes     = 19
	fieldTaskRanksPerNode = 20
)

// AppendMPIFields appends to a task's pre-encoded fields (AppendTaskFields)
// the nodes it runs on and its ranks per node. Protobuf reads fields in
// any order, so the result decodes as the Task with those fields set.
func AppendMPIFields(b []byte, nodes []string, ranksPerNode int32) []byte {
	for _, n := range nodes {
		b = protowire.AppendTag(b, fieldTaskMpiNodes, protowire.BytesType)
		b = protowire.AppendString(b, n)
	}
	return appendVarint(b, fieldTaskRanksPerNode, uint64(uint32(ranksPerNode)))
}

// MaxRanks bounds nodes × ranks per node of one multi-node task.
const MaxRanks = 1 << 20

// CheckNodes checks the multi-node fields of a task spec: nodes and
// ranks_per_node not negative, ranks only with nodes >= 2, at most
// MaxRanks ranks, and no cores, gpus or mem with them (a multi-node task
// takes whole nodes). The error names the field and value.
func CheckNodes(t *TaskSpec) error {
	switch {
	case t.Nodes < 0:
		return fmt.Errorf("nodes %d: must be >= 1", t.Nodes)
	case t.RanksPerNode < 0:
		return fmt.Errorf("ranks_per_node %d: must be >= 1", t.RanksPerNode)
	case t.Nodes <= 1 && t.RanksPerNode > 1:
		return fmt.Errorf("ranks_per_node %d needs nodes >= 2 (a task of one node starts its own ranks)", t.RanksPerNode)
	case t.Nodes <= 1:
		return nil
	case int64(t.Nodes)*int64(max(t.RanksPerNode, 1)) > MaxRanks:
		return fmt.Errorf("nodes %d × ranks_per_node %d: more than %d ranks", t.Nodes, t.RanksPerNode, MaxRanks)
	case t.Cores != 0 || t.Gpus != 0 || t.MemBytes != 0:
		return fmt.Errorf("nodes %d: a multi-node task takes whole nodes; cores, gpus and mem do not apply to it", t.Nodes)
	}
	return nil
}
