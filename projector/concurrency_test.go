package projector_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
	"github.com/cairnhq/cairn/projector"
)

// A projector refuses Concurrency above 1, pointing to partitions: its
// batch is one transaction with its position.
func TestConcurrencyRefused(t *testing.T) {
	s := testkit.DomainStore(t, testdb.New(t, testdb.SQLite).Gorm)
	_, err := projector.New(s, "accounts", projector.Options{Processing: processing.Options{Concurrency: 8}})
	if !errors.Is(err, processing.ErrInvalid) || !strings.Contains(err.Error(), "partitions") {
		t.Errorf("New(Concurrency 8) = %v, want ErrInvalid pointing to partitions", err)
	}
	if _, err := projector.New(s, "accounts", projector.Options{Processing: processing.Options{Concurrency: 1}}); err != nil {
		t.Errorf("New(Concurrency 1) = %v, want nil", err)
	}
}
