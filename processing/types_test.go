package processing_test

import (
	"context"
	"slices"
	"testing"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
	"github.com/cairnhq/cairn/processing"
)

func TestTypes(t *testing.T) {
	db := testdb.New(t, testdb.SQLite)
	s := testkit.DomainStore(t, db.Gorm)
	p, h := newKind(t, s, "typed")
	if got := p.Types(); len(got) != 0 {
		t.Errorf("Types() with no handlers = %v, want none", got)
	}
	must(t, processing.On(h, func(context.Context, int64, event.Event, testkit.Deposited) error { return nil }))
	must(t, processing.On(h, func(context.Context, int64, event.Event, testkit.Opened) error { return nil }))
	got := p.Types()
	slices.Sort(got)
	if want := []string{testkit.TypeDeposited, testkit.TypeOpened}; !slices.Equal(got, want) {
		t.Errorf("Types() = %v, want %v", got, want)
	}
	plain, err := processing.New(s, "plain", &recorder{types: []string{testkit.TypeNoted}}, processing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := plain.Types(); !slices.Equal(got, []string{testkit.TypeNoted}) {
		t.Errorf("Types() of a plain processor = %v, want its handler's", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
