package event

import "hash/fnv"

// PartitionOf returns the partition, from 0 to k-1, that the stream
// streamID belongs to when a processor is split into k partitions: the
// FNV-1a 32-bit hash of the stream ID's bytes, modulo k (0 when k < 2).
// The result is persisted in effect — a partition's saved position says
// which events of its streams it has handled — so this function never
// changes.
func PartitionOf(streamID string, k int) int {
	if k < 2 {
		return 0
	}
	return int(StreamHash(streamID) % uint32(k))
}

// StreamHash is the FNV-1a 32-bit hash of the stream ID's bytes, which
// [PartitionOf] takes modulo the number of partitions.
func StreamHash(streamID string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(streamID))
	return h.Sum32()
}

// PartitionRow is the position row of one partition of a partitioned
// processor (or the one row of an unpartitioned one) as a re-partitioning
// reads and writes it: the store and the processing package share this
// record.
type PartitionRow struct {
	// Name is the row's name.
	Name string
	// Position is its saved position.
	Position int64
	// Owner is the holder of the row's live lease, "" when none; read
	// from the rows being replaced only.
	Owner string
	// Handled records the events the row's processor has to skip beyond
	// its position, because the rows it was made from had handled them;
	// "" when none. The processing package writes and reads it; the
	// store keeps it as it is.
	Handled string
}
