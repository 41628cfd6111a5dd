package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/cairnhq/cairn/internal/testdb"
	"github.com/cairnhq/cairn/internal/testkit"
)

var screenshot = flag.String("screenshot", "", "TestBrowser: once the walk-through passes on SQLite, save a screenshot of the page to this PNG file")

// browserNames are the executables TestBrowser looks for, in order.
var browserNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless-shell"}

// findBrowser returns the path of a Chromium-like browser: $CAIRN_BROWSER,
// or the first of browserNames on the PATH. Without one the test is
// skipped, except in CI (CI set), where it fails: .ci/run installs
// Chromium.
func findBrowser(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CAIRN_BROWSER"); p != "" {
		return p
	}
	for _, name := range browserNames {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("no browser found (looked for $CAIRN_BROWSER and %s); CI must have one: .ci/run installs chromium", strings.Join(browserNames, ", "))
	}
	t.Skipf("no browser found (looked for $CAIRN_BROWSER and %s); install chromium to run this test", strings.Join(browserNames, ", "))
	return ""
}

// newBrowser starts a headless browser for t and returns its context,
// bounded by timeout. If t fails, a screenshot of the page is saved and
// its path logged.
func newBrowser(t *testing.T, path string, timeout time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests may run as root, in containers
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	log := testkit.Logger(t)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(format string, args ...any) {
		log.Warn("chromedp: " + fmt.Sprintf(format, args...))
	}))
	if err := chromedp.Do(browserCtx); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("starting %s: %v", path, err)
	}
	ctx, cancel := context.WithTimeout(browserCtx, timeout)
	t.Cleanup(func() {
		cancel()
		if t.Failed() {
			saveScreenshot(t, browserCtx)
		}
		cancelBrowser()
		cancelAlloc()
	})
	return ctx
}

// saveScreenshot saves what the browser shows to a file in the temporary
// directory and logs its path.
func saveScreenshot(t *testing.T, browserCtx context.Context) {
	ctx, cancel := context.WithTimeout(browserCtx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		t.Logf("no screenshot: %v", err)
		return
	}
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	file := filepath.Join(os.TempDir(), "cairn-"+name+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Logf("no screenshot: %v", err)
		return
	}
	t.Logf("screenshot of the page: %s", file)
}

// TestBrowser drives the page in a headless browser through a todo's life:
// it adds a todo and sees it listed in the first answer after the add
// (read-your-writes, no polling), amends its title in place, completes it
// and sees it under Completed, opens its history and sees its three events
// in order, and sees every processor in the panel with lag 0.
func TestBrowser(t *testing.T) {
	browser := findBrowser(t)
	testdb.Run(t, func(t *testing.T, kind testdb.Kind) {
		a := startApp(t, kind)
		ctx := newBrowser(t, browser, 2*time.Minute)
		do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
			t.Helper()
			if err := chromedp.Do(ctx, steps...); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
		// text reads the text of the element sel selects, once there is
		// one, in one step of the page's own script: a node found first and
		// read after could be replaced in between by a re-render of its
		// list ("No node with given id found").
		text := func(sel string) string {
			t.Helper()
			js := `(() => { const e = document.querySelector(` + strconv.Quote(sel) + `); return e ? e.innerText : null })()`
			deadline := time.Now().Add(30 * time.Second)
			for {
				v, err := chromedp.Run(ctx, chromedp.Evaluate[any](js))
				if err != nil {
					t.Fatalf("text of %s: %v", sel, err)
				}
				if s, ok := v.(string); ok {
					return s
				}
				if time.Now().After(deadline) {
					t.Fatalf("text of %s: no such element after 30 s", sel)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		eval := func(expr string) any {
			t.Helper()
			v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr))
			if err != nil {
				t.Fatalf("%s: %v", expr, err)
			}
			return v
		}
		// shown waits for the command's answer, then until the lists show
		// the answers to queries sent with Cairn-After at the position it
		// wrote — the first refresh after the command — and checks that
		// none of them was stale.
		shown := func(what string) {
			t.Helper()
			do(what+": the command's answer", chromedp.Poll[chromedp.Void](`/written at position \d+/.test(document.querySelector('#status').textContent)`, chromedp.WithPollingTimeout(30*time.Second)))
			status := text("#status")
			pos := status[strings.LastIndex(status, " ")+1 : len(status)-1]
			do(what+": the lists after position "+pos, chromedp.WaitVisible(chromedp.CSS(`.lists[data-after="`+pos+`"]`)))
			if stale := eval(`[...document.querySelectorAll('.stale')].some(e => !e.hidden)`); stale != false {
				t.Errorf("%s: a list answered Cairn-Stale after position %s", what, pos)
			}
		}

		do("open the page", chromedp.Navigate(a.url+"/"), chromedp.WaitVisible(chromedp.CSS(`#add input[name=title]`)))

		// Add: the first answer after the write lists the todo.
		do("add a todo",
			chromedp.SendKeys(chromedp.CSS(`#add input[name=title]`), "Buy milk"),
			chromedp.SendKeys(chromedp.CSS(`#add input[name=description]`), "two litres"),
			chromedp.Click(chromedp.CSS(`#add button`)))
		shown("add")
		id, _ := eval(`document.querySelector('#outstanding li[data-id]')?.dataset.id ?? ''`).(string)
		if id == "" {
			t.Fatal("the outstanding list has no todo after the add")
		}
		item := `#outstanding li[data-id="` + id + `"]`
		if got := text(item + " .title"); got != "Buy milk" {
			t.Fatalf("the outstanding todo is titled %q, want Buy milk", got)
		}

		// Amend in place, by keyboard: Enter saves.
		do("amend its title",
			chromedp.Click(chromedp.CSS(item+" .edit")),
			chromedp.WaitVisible(chromedp.CSS(item+" form.amend input[name=title]")),
			// The title has the focus, selected: typing replaces it.
			chromedp.KeyEvent("Buy oat milk"+kb.Enter))
		shown("amend")
		if got := text(item + " .title"); got != "Buy oat milk" {
			t.Fatalf("after the amend, the todo is titled %q, want Buy oat milk", got)
		}

		// Complete: it moves to the completed list.
		do("complete it", chromedp.Click(chromedp.CSS(item+" .complete")))
		shown("complete")
		done := `#completed li[data-id="` + id + `"]`
		if got, n := text(done+" .title"), eval(`document.querySelectorAll('#outstanding li[data-id]').length`); got != "Buy oat milk" || n != float64(0) {
			t.Fatalf("after completing: completed shows %q, %v outstanding; want Buy oat milk and none", got, n)
		}

		// Its history: the stream's events, in order.
		do("open its history", chromedp.Click(chromedp.CSS(done+" .history")),
			chromedp.WaitVisible(chromedp.CSS(`#history tbody tr[data-type]`)))
		rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](`[...document.querySelectorAll('#history tbody tr')].map(tr => [...tr.cells].map(td => td.textContent))`))
		if err != nil {
			t.Fatal(err)
		}
		wantTypes := []string{"todo_added", "todo_amended", "todo_completed"}
		if len(rows) != len(wantTypes) {
			t.Fatalf("history rows = %q, want %d events", rows, len(wantTypes))
		}
		last := int64(0)
		for i, r := range rows {
			pos, err := strconv.ParseInt(r[2], 10, 64)
			if r[0] != strconv.Itoa(i+1) || r[1] != wantTypes[i] || err != nil || pos <= last || r[3] == "" || r[4] == "" {
				t.Errorf("history row %d = %q, want version %d, %s, a position after %d, a time and a correlation ID", i, r, i+1, wantTypes[i], last)
			}
			last = pos
		}
		do("close the history", chromedp.KeyEvent(kb.Escape), chromedp.WaitNotVisible(chromedp.ID("history")))

		// The processors panel: every processor caught up.
		do("processors at lag 0", chromedp.Poll[chromedp.Void](`(() => {
			const rows = [...document.querySelectorAll('#processors tbody tr')];
			return rows.length === 4 && rows.every(tr => tr.querySelector('.lag').textContent === '0' && tr.querySelector('.state').textContent === 'running');
		})()`, chromedp.WithPollingTimeout(30*time.Second)))

		if *screenshot != "" && kind == testdb.SQLite {
			showcase(t, ctx, a)
		}
	})
}

// showcase fills the page with a few more todos and saves a screenshot
// of it to the -screenshot file, for the README.
func showcase(t *testing.T, ctx context.Context, a *testApp) {
	t.Helper()
	for i, body := range []string{
		`{"title":"Write the release notes","description":"Cairn 0.x","due_date":"2030-06-13","stakeholder_email":"lead@example.com"}`,
		`{"title":"Review the parking PR","description":"poison events, per stream"}`,
		`{"title":"Water the plants"}`,
	} {
		must(t, "POST", a.url+"/todo/"+todoID(900+i), body, 201)
	}
	err := chromedp.Do(ctx,
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#outstanding li[data-id="`+todoID(902)+`"]`)),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll('#processors .lag')].every(td => td.textContent === '0')`, chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		t.Fatalf("showcase: %v", err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("showcase: %v", err)
	}
	if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("saved a screenshot of the page to %s", *screenshot)
}
