package processing

// Build is the state of a new version of a processor's output being built
// beside the version that serves — a versioned projector's rebuild — as
// the process that runs it (or stands by for it) sees it. A projector
// reports it through its Building method; the runner shows it in its
// status.
type Build struct {
	// Version is the version being built, as declared in the code;
	// Label names the build: "v4", or "v3r1" for the first rebuild of
	// version 3.
	Version int
	Label   string
	// Status is that of the processor that builds the version, a
	// processor of its own with its own position and lease: its Name,
	// State, Position (in Standby, that of the process that builds it),
	// Owner and errors.
	Status
}
