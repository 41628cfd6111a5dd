package eventstore_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testdb"
)

type errUnregistered struct{ X int }

// errNote is the event data of the error tests.
type errNote struct {
	Text string `json:"text"`
}

func errRegistry() *event.Registry {
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[errNote](reg, "test.err_note")
	return reg
}

// The store's errors say each thing once: "eventstore:" once, the
// operation and its stream once, the sentinel's text once; errors.Is and
// errors.As still find every sentinel and typed error in them.
func TestErrorsSayEachThingOnce(t *testing.T) {
	t.Parallel()
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		s, err := eventstore.New(db.Gorm, errRegistry(), eventstore.Options{Logger: testdb.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		stored, err := s.Append(ctx, "e", event.NoStream, []any{errNote{}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, "gone", event.NoStream, []any{errNote{}}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteStream(ctx, "gone", event.Any); err != nil {
			t.Fatal(err)
		}
		// A store whose registry does not know the stored type.
		blind, err := eventstore.New(db.Gorm, event.NewRegistry(event.RegistryOptions{}), eventstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		firstErr := func(seq func(func(event.Event, error) bool)) error {
			for _, err := range seq {
				if err != nil {
					return err
				}
			}
			return nil
		}

		_, appendEmpty := s.Append(ctx, "", event.Any, []any{errNote{}})
		_, appendConflict := s.Append(ctx, "e", event.Exact(5), []any{errNote{}})
		_, appendDeleted := s.Append(ctx, "gone", event.Any, []any{errNote{}})
		_, appendUnregistered := s.Append(ctx, "e", event.Any, []any{errUnregistered{}})
		_, readMissing := s.ReadEvent(ctx, "e", 9)
		_, readZero := s.ReadEvent(ctx, "e", 0)
		_, newBad := eventstore.New(db.Gorm, errRegistry(), eventstore.Options{TablePrefix: "x-"})
		_, batchBad := s.ReadBatch(ctx, 0, 0)
		var subscribeBad error
		for _, err := range s.SubscribeBatches(ctx, 0, 0) {
			subscribeBad = err
		}
		tests := []struct {
			name   string
			err    error
			want   string // the whole text; "" to check only the rules
			is     []error
			stream string // named once
		}{
			{"append to an empty stream ID", appendEmpty,
				`eventstore: append: invalid argument: empty stream ID`, []error{eventstore.ErrInvalidArgument}, ""},
			{"version conflict", appendConflict, "", []error{event.ErrVersionConflict}, "e"},
			{"append to a deleted stream", appendDeleted,
				`eventstore: append "gone": ` + event.ErrStreamDeleted.Error(), []error{event.ErrStreamDeleted}, "gone"},
			{"append of an unregistered type", appendUnregistered, "",
				[]error{eventstore.ErrInvalidArgument, event.ErrUnknownType}, "e"},
			{"read of a missing event", readMissing,
				`eventstore: read "e" version 9: ` + event.ErrEventNotFound.Error(), []error{event.ErrEventNotFound}, "e"},
			{"read of version 0", readZero,
				`eventstore: read "e" version 0: invalid argument: versions start at 1`, []error{eventstore.ErrInvalidArgument}, "e"},
			{"new with a bad prefix", newBad,
				`eventstore: new: invalid argument: table prefix "x-": want letters, digits and underscores, at most 41`,
				[]error{eventstore.ErrInvalidArgument}, ""},
			{"options", eventstore.Options{PageSize: -1}.Validate(),
				`eventstore: invalid argument: page size -1 is negative`, []error{eventstore.ErrInvalidArgument}, ""},
			{"delete of a missing stream", s.DeleteStream(ctx, "nope", event.Any),
				`eventstore: delete stream "nope": ` + event.ErrStreamNotFound.Error(), []error{event.ErrStreamNotFound}, "nope"},
			{"read batch with limit 0", batchBad,
				`eventstore: read batch after 0: invalid argument: limit 0, want 1 or more`, []error{eventstore.ErrInvalidArgument}, ""},
			{"subscribe with limit 0", subscribeBad,
				`eventstore: subscribe after 0: invalid argument: batch limit 0, want 1 or more`, []error{eventstore.ErrInvalidArgument}, ""},
			{"read stream of a stored type the registry does not know", firstErr(blind.ReadStream(ctx, "e", 0, 0)), "",
				[]error{event.ErrUnknownType}, "e"},
			{"read of a deleted stream", firstErr(s.ReadStream(ctx, "gone", 0, 0)),
				`eventstore: read stream "gone": ` + event.ErrStreamDeleted.Error(), []error{event.ErrStreamDeleted}, "gone"},
		}
		for _, tt := range tests {
			t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
				if tt.err == nil {
					t.Fatalf("no error")
				}
				text := tt.err.Error()
				if tt.want != "" && text != tt.want {
					t.Errorf("Error() = %q, want %q", text, tt.want)
				}
				if n := strings.Count(text, "eventstore:"); n != 1 {
					t.Errorf("Error() = %q says \"eventstore:\" %d times, want once", text, n)
				}
				if tt.stream != "" {
					if n := strings.Count(text, fmt.Sprintf("%q", tt.stream)); n != 1 {
						t.Errorf("Error() = %q names stream %q %d times, want once", text, tt.stream, n)
					}
				}
				for _, target := range tt.is {
					if !errors.Is(tt.err, target) {
						t.Errorf("errors.Is(%q, %v) = false, want true", text, target)
					}
					if n := strings.Count(text, target.Error()); n > 1 {
						t.Errorf("Error() = %q repeats %q", text, target)
					}
				}
			})
		}

		var vc *event.VersionConflictError
		if !errors.As(appendConflict, &vc) || vc.StreamID != "e" || vc.Expected != event.Exact(5) || vc.Actual != 1 {
			t.Errorf("errors.As(%v, *event.VersionConflictError) = %+v, want stream e, expected 5, actual 1", appendConflict, vc)
		}
		var de *event.DecodeError
		decodeErr := firstErr(blind.ReadStream(ctx, "e", 0, 0))
		if !errors.As(decodeErr, &de) || de.Position != stored[0].Position || de.StreamID != "e" {
			t.Errorf("errors.As(%v, *event.DecodeError) = %+v, want one at position %d of stream e", decodeErr, de, stored[0].Position)
		}
		if errors.Is(appendConflict, eventstore.ErrUnavailable) || errors.Is(appendEmpty, eventstore.ErrUnavailable) {
			t.Errorf("errors of bad input match ErrUnavailable")
		}
	})
}
