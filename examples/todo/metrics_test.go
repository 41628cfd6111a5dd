package main

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/examples/todo/internal/projections"
	"github.com/cairnhq/cairn/internal/testdb"
)

// TestMetricsScrape runs the binary in split mode and scrapes /metrics in
// the Prometheus text format: on the processors' status address, a paused
// projector's lag (in events and in seconds) rises with each command and
// falls back to 0 once it is resumed and has caught up; on the web
// server, the appends of the commands are counted.
func TestMetricsScrape(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		t.Parallel()
		db := testdb.New(t, kind)
		runBinary(t, bin, "migrate", "-db", db.DSN).wait(t)
		web := runBinary(t, bin, "web", "-db", db.DSN, "-addr", "127.0.0.1:0")
		procs := runBinary(t, bin, "processors", "-db", db.DSN, "-status-addr", "127.0.0.1:0")
		api := strings.TrimSuffix(web.url, "/")
		name := projections.OutstandingName
		of := []string{"cairn_processor_name", name}

		must(t, "POST", api+"/todo/"+todoID(1), `{"title":"One"}`, 201)
		waitForMetrics(t, procs.url+"metrics", "the projector at the head", func(s samples) bool {
			pos, ok := s.value("cairn_processor_position", of...)
			lag, _ := s.value("cairn_processor_lag", of...)
			return ok && pos > 0 && lag == 0
		})

		must(t, "POST", procs.url+url.PathEscape(name)+"/pause", "", 200)
		var lags, seconds []float64
		for i := 2; i <= 4; i++ {
			time.Sleep(5 * time.Millisecond) // so that recorded times differ
			must(t, "POST", api+"/todo/"+todoID(i), `{"title":"Another"}`, 201)
			s := scrape(t, procs.url+"metrics")
			if paused, _ := s.value("cairn_processor_state", append(of, "cairn_processor_state", "paused")...); paused != 1 {
				t.Errorf("cairn_processor_state{state=paused} = %v while paused, want 1", paused)
			}
			lag, _ := s.value("cairn_processor_lag", of...)
			d, _ := s.value("cairn_processor_lag_duration_seconds", of...)
			lags, seconds = append(lags, lag), append(seconds, d)
		}
		t.Logf("while paused: lag %v events, %v seconds", lags, seconds)
		for i := range lags {
			if lags[i] < float64(i+1) || (i > 0 && (lags[i] <= lags[i-1] || seconds[i] <= seconds[i-1])) || seconds[i] <= 0 {
				t.Errorf("while paused: lag %v events, %v seconds; want both rising with each command", lags, seconds)
				break
			}
		}

		must(t, "POST", procs.url+url.PathEscape(name)+"/resume", "", 200)
		waitForMetrics(t, procs.url+"metrics", "the lag back at 0", func(s samples) bool {
			lag, _ := s.value("cairn_processor_lag", of...)
			d, _ := s.value("cairn_processor_lag_duration_seconds", of...)
			return lag == 0 && d == 0
		})

		// The web process measures the appends of the commands: four
		// todos added, one event each.
		s := scrape(t, web.url+"metrics")
		if n, _ := s.value("cairn_append_events_total"); n != 4 {
			t.Errorf("web: cairn_append_events_total = %v, want 4", n)
		}
		if n, _ := s.value("cairn_append_duration_seconds_count"); n != 4 {
			t.Errorf("web: cairn_append_duration_seconds_count = %v, want 4", n)
		}
		if _, ok := s.value("cairn_processor_lag"); ok {
			t.Errorf("web: cairn_processor_lag reported by a process that runs no processors")
		}

		web.stop(t)
		procs.stop(t)
	})
}

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

type samples []sample

var labelPattern = regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)

// scrape reads url's metrics in the Prometheus text format.
func scrape(t testing.TB, url string) samples {
	t.Helper()
	res := send(t, "GET", url, "")
	if res.status != 200 || !strings.HasPrefix(res.contentType, "text/plain") {
		t.Fatalf("GET %s = %d (%s), want 200 text/plain", url, res.status, res.contentType)
	}
	var out samples
	for line := range strings.Lines(res.body) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if sp < 0 || err != nil {
			t.Fatalf("GET %s: bad line %q", url, line)
		}
		series := line[:sp]
		s := sample{name: series, labels: map[string]string{}, value: v}
		if i := strings.IndexByte(series, '{'); i >= 0 {
			s.name = series[:i]
			for _, m := range labelPattern.FindAllStringSubmatch(series[i:], -1) {
				s.labels[m[1]] = m[2]
			}
		}
		out = append(out, s)
	}
	return out
}

// value returns the sum of the samples of the metric whose labels include
// labels (name, value, …), and whether there is any.
func (ss samples) value(name string, labels ...string) (float64, bool) {
	var sum float64
	found := false
next:
	for _, s := range ss {
		if s.name != name {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if s.labels[labels[i]] != labels[i+1] {
				continue next
			}
		}
		sum += s.value
		found = true
	}
	return sum, found
}

// waitForMetrics scrapes url until ok accepts its metrics, for up to a
// minute.
func waitForMetrics(t *testing.T, url, what string, ok func(samples) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if ok(scrape(t, url)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: no %s within a minute", url, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
