package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/examples/todo/internal/notify"
	"github.com/cairnhq/cairn/internal/testdb"
)

// testApp is the whole app running in the test's process on a real
// database: its API over real HTTP and its processors in the background.
type testApp struct {
	*app
	url    string
	sender *recordingSender
}

// startApp migrates a fresh database of the given kind, runs the
// processors and serves the API until the test ends.
func startApp(t *testing.T, kind testdb.Kind) *testApp {
	t.Helper()
	db := testdb.New(t, kind)
	logger := testLogger(t)
	sender := &recordingSender{}
	a, err := newApp(db.Gorm, config{logger: logger, sender: sender})
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	if err := a.migrate(t.Context()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	r, err := a.newRunner()
	if err != nil {
		t.Fatalf("newRunner: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	srv := httptest.NewServer(a.handler(r.Handler()))
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processors: %v", err)
		}
	})
	return &testApp{app: a, url: srv.URL, sender: sender}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// recordingSender is a notify.Sender that records what it is asked to send.
type recordingSender struct {
	mu   sync.Mutex
	sent []notify.Notification
}

func (s *recordingSender) Send(ctx context.Context, n notify.Notification) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, n)
	return nil
}

func (s *recordingSender) notifications() []notify.Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]notify.Notification(nil), s.sent...)
}

// response is an HTTP answer.
type response struct {
	status      int
	body        string
	contentType string
}

func (r response) String() string { return fmt.Sprintf("%d %q", r.status, r.body) }

// send makes an HTTP request to base+path with body (none when empty).
func send(t testing.TB, method, url, body string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return response{status: res.StatusCode, body: string(data), contentType: res.Header.Get("Content-Type")}
}

// must sends a request that must answer want.
func must(t testing.TB, method, url, body string, want int) {
	t.Helper()
	if got := send(t, method, url, body); got.status != want {
		t.Fatalf("%s %s %s = %v, want %d", method, url, body, got, want)
	}
}

// list is a query's answer, decoded.
type list []map[string]any

// getList reads a query endpoint.
func getList(t testing.TB, url string) list {
	t.Helper()
	res := send(t, "GET", url, "")
	if res.status != http.StatusOK || res.contentType != "application/json" {
		t.Fatalf("GET %s = %v (%s), want 200 application/json", url, res, res.contentType)
	}
	var l list
	if err := json.Unmarshal([]byte(res.body), &l); err != nil || l == nil {
		t.Fatalf("GET %s = %s: want a JSON array (%v)", url, res.body, err)
	}
	return l
}

// waitForList polls a query endpoint until it answers want, and fails the
// test if it does not within the bound.
func waitForList(t testing.TB, url string, want list) {
	t.Helper()
	var got list
	deadline := time.Now().Add(60 * time.Second)
	for {
		got = getList(t, url)
		if reflect.DeepEqual(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s:\n got %s\nwant %s", url, jsonString(got), jsonString(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// row is a row of a list, as decoded from JSON: text fields are strings or
// nil.
func row(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func jsonString(v any) string {
	data, _ := json.MarshalIndent(v, "", "  ")
	return string(data)
}

// todoID returns a fixed todo ID for the test, distinct for each n.
func todoID(n int) string {
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
}

// waitForSet is waitForList for a list whose order does not matter.
func waitForSet(t testing.TB, url string, want list) {
	t.Helper()
	key := func(l list) []string {
		ks := make([]string, len(l))
		for i, r := range l {
			ks[i] = jsonString(r)
		}
		slices.Sort(ks)
		return ks
	}
	var got list
	deadline := time.Now().Add(60 * time.Second)
	for {
		got = getList(t, url)
		if slices.Equal(key(got), key(want)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s:\n got %s\nwant (in any order) %s", url, jsonString(got), jsonString(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
