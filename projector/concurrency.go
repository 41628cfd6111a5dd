package projector

import (
	"fmt"

	"github.com/cairnhq/cairn/processing"
)

// checkConcurrency refuses processing.Options.Concurrency above 1: a
// projector's batch is one transaction in which its handlers' writes and
// its position commit together (exactly-once), one event after another.
// Partitions by stream give a projector parallelism without weakening
// that.
func checkConcurrency(opts Options) error {
	if opts.Processing.Concurrency <= 1 {
		return nil
	}
	return fmt.Errorf("%w: concurrency %d: a projector writes a batch in one transaction, its position with it, one event after another; split it into partitions instead",
		processing.ErrInvalid, opts.Processing.Concurrency)
}
