package wire

import "google.golang.org/protobuf/encoding/protowire"

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
