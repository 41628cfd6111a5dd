package aggregate

// Snapshotter is implemented by aggregates whose state a [Repository] can
// store in snapshots (with [Options.SnapshotEvery]). The aggregate writes
// and reads its own state, all of it, so that a load from a snapshot
// rebuilds exactly what a replay of the events would:
//
//	type todoState struct {
//		Added, Completed bool
//	}
//
//	func (t *Todo) MarshalSnapshot() ([]byte, error) {
//		return json.Marshal(todoState{t.added, t.completed})
//	}
//
//	func (t *Todo) UnmarshalSnapshot(data []byte) error {
//		var s todoState
//		if err := json.Unmarshal(data, &s); err != nil {
//			return err
//		}
//		t.added, t.completed = s.Added, s.Completed
//		return nil
//	}
//
// The Root's ID and versions are not part of the data: the repository
// keeps them beside it. UnmarshalSnapshot is called on a new aggregate
// (new(T)) before its Root is set up. Change [Options.SnapshotSchemaVersion]
// whenever the data's shape or meaning changes: snapshots of other schema
// versions are ignored, and the aggregate is replayed from its events.
//
// An aggregate that does not implement Snapshotter has no snapshots:
// [NewRepository] refuses SnapshotEvery > 0 for it with an error matching
// [ErrNotSnapshotter]. Cairn never guesses an aggregate's state from its
// fields.
type Snapshotter interface {
	// MarshalSnapshot returns the aggregate's state.
	MarshalSnapshot() ([]byte, error)
	// UnmarshalSnapshot restores the state written by MarshalSnapshot.
	UnmarshalSnapshot(data []byte) error
}
