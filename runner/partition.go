package runner

import "github.com/cairnhq/cairn/processing"

// PartitionStatus is the state of one partition of a partitioned
// processor (see [processing.Options.Partitions]), as this process sees
// it: the partitions it runs, and those it stands by for, with their
// owners and positions as of its last poll.
type PartitionStatus struct {
	// Index is the partition's index, from 0; Name the name of its
	// position row.
	Index int    `json:"index"`
	Name  string `json:"name"`
	State State  `json:"state"`
	// Owner is the owner ID of the process that holds the partition's
	// lease ("" when none does).
	Owner    string `json:"owner"`
	Position int64  `json:"position"`
	// Lag is the distance from Position to the head, in positions: the
	// events of every partition lie in between.
	Lag int64 `json:"lag"`
}

// partitionsOf returns the status of each partition of ps.
func partitionsOf(ps processing.Status, head int64) []PartitionStatus {
	if len(ps.Partitions) == 0 {
		return nil
	}
	out := make([]PartitionStatus, len(ps.Partitions))
	for j, s := range ps.Partitions {
		lag := max(head-s.Position, 0)
		out[j] = PartitionStatus{Index: j, Name: s.Name, Owner: s.Owner, Position: s.Position, Lag: lag,
			State: stateOf(s.State, lag == 0)}
	}
	return out
}

// stateOf is the runner's state of a processor, or of a partition, in
// processing state s; live says whether a running one has caught up.
func stateOf(s processing.State, live bool) State {
	switch s {
	case processing.Idle:
		return Starting
	case processing.Standby:
		return Standby
	case processing.Running:
		if live {
			return Live
		}
		return CatchingUp
	case processing.Retrying:
		return Retrying
	case processing.Failed:
		return Failed
	case processing.Paused:
		return Paused
	}
	return Stopped
}
