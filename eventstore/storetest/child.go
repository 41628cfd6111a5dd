package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testkit"
)

// envChild names the environment variable that makes Run play a child
// process's part. It holds a childSpec as JSON.
const envChild = "CAIRN_STORETEST_CHILD"

// childSpec is the work of a child process.
type childSpec struct {
	// Test is the name of the test that called Run in the parent: the
	// child's Run plays its part only in that test.
	Test string
	// Role is "migrate" (migrate the store when released), "write"
	// (append with Writers writers, numbered from First, Events events
	// each, and save what was acknowledged in the file Out) or "follow"
	// (subscribe from the start and print each event until killed; see
	// CheckProcessOrder).
	Role    string
	DSN     string
	First   int
	Writers int
	Events  int
	Out     string
}

// childFromEnv returns the child's work when this process is a child.
func childFromEnv(t *testing.T) (childSpec, bool) {
	v := os.Getenv(envChild)
	if v == "" {
		return childSpec{}, false
	}
	var spec childSpec
	if err := json.Unmarshal([]byte(v), &spec); err != nil {
		t.Fatalf("storetest: %s: %v", envChild, err)
	}
	return spec, true
}

// startChild starts a child process that runs the caller's test again
// with spec, and waits until it is ready.
func (s *suite) startChild(t *testing.T, spec childSpec) *testkit.Child {
	t.Helper()
	return s.startChildWith(t, spec, testkit.ChildOptions{})
}

// startChildWith is startChild with more of the child's options.
func (s *suite) startChildWith(t *testing.T, spec childSpec, opts testkit.ChildOptions) *testkit.Child {
	t.Helper()
	spec.Test = s.caller.Name()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	opts.Run = testkit.RunPattern(s.caller)
	opts.Env = append(opts.Env, envChild+"="+string(b))
	return testkit.StartChild(t, opts)
}

// runChild plays the child's part and ends the test. subscribe, if set,
// replaces Store.Subscribe in the "follow" role.
func runChild(t *testing.T, cfg Config, spec childSpec, subscribe func(context.Context, *eventstore.Store, int64) iter.Seq2[event.Event, error]) {
	if spec.Test != t.Name() {
		t.Skipf("storetest: child process of %s", spec.Test)
	}
	st := testkit.NewStore(t, openDB(t, cfg, spec.DSN), testkit.NewRegistry(), options(t, cfg, nil))
	testkit.ChildReady()
	if err := testkit.AwaitRelease(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	switch spec.Role {
	case "migrate":
		if err := st.Migrate(ctx); err != nil {
			t.Fatalf("Migrate() = %v, want nil", err)
		}
	case "write":
		acked := make([][]event.Event, spec.Writers)
		var wg sync.WaitGroup
		for w := range spec.Writers {
			wg.Go(func() {
				var err error
				acked[w], err = writeTicks(ctx, st, spec.First+w, spec.Events, nil)
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if err := writeAcked(spec.Out, acked); err != nil {
			t.Fatal(err)
		}
	case "follow":
		followStore(t, st, subscribe)
	default:
		t.Fatalf("storetest: child role %q", spec.Role)
	}
	t.SkipNow() // the rest of the test is the parent's
}

// ackedEvent is an acknowledged event as a child reports it: every field
// the parent compares with what it reads (the child writes no metadata,
// causation or correlation IDs).
type ackedEvent struct {
	Position   int64
	ID         string
	StreamID   string
	Version    int64
	Type       string
	Data       testkit.Tick
	RecordedAt time.Time
}

// writeAcked saves acknowledged events to the file path, one JSON object
// a line.
func writeAcked(path string, acked [][]event.Event) error {
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	for _, a := range acked {
		for _, e := range a {
			tick, ok := e.Data.(testkit.Tick)
			if !ok {
				return fmt.Errorf("acknowledged event %s holds %T, want a Tick", testkit.Places([]event.Event{e}), e.Data)
			}
			if err := enc.Encode(ackedEvent{e.Position, e.ID.String(), e.StreamID, e.Version, e.Type, tick, e.RecordedAt}); err != nil {
				return err
			}
		}
	}
	return os.WriteFile(path, out.Bytes(), 0o600)
}

// readAcked reads the events saved by writeAcked.
func readAcked(path string) ([]event.Event, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []event.Event
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		var a ackedEvent
		if err := dec.Decode(&a); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		e := event.Event{Position: a.Position, StreamID: a.StreamID, Version: a.Version, Type: a.Type, Data: a.Data, RecordedAt: a.RecordedAt.UTC()}
		if err := e.ID.UnmarshalText([]byte(a.ID)); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
}
