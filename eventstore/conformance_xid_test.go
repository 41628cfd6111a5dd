package eventstore_test

import (
	"testing"

	"github.com/cairnhq/cairn/eventstore/storetest"
)

// TestConformanceXID runs the conformance suite on PostgreSQL under
// OrderingXID.
func TestConformanceXID(t *testing.T) {
	t.Parallel()
	skipWithoutPostgres(t)
	events := 20000
	if testing.Short() {
		events /= 8
	}
	storetest.Run(t, xidConfig(events))
}
