package admin

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// isTerminal reports whether v is an *os.File open on a terminal (a
// character device).
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// emit writes v as one line of JSON.
func (c *cli) emit(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// table returns a writer that aligns tab-separated columns; flush it.
func (c *cli) table() *tabwriter.Writer {
	return tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
}

// confirm asks the user to confirm what op is about to do, on a terminal;
// elsewhere it needs --yes.
func (c *cli) confirm(op, what string) error {
	if c.o.yes {
		return nil
	}
	stdin := c.cfg.Stdin
	if stdin == nil {
		stdin = os.Stdin
	}
	if !isTerminal(stdin) || !isTerminal(c.stdout) {
		fmt.Fprintln(c.stderr, what)
		return usagef("%s is destructive: pass --yes to confirm (there is no terminal to ask on)", op)
	}
	fmt.Fprintf(c.stdout, "%s\nProceed? [y/N] ", what)
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		return ErrAborted
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return ErrAborted
}

// timeText renders a time for tables: RFC 3339 in UTC, "-" when zero.
func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// optTime is a time that JSON renders as null when zero.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// progress reports the progress of long work on w (standard error): a bar
// redrawn in place when the command's output is a terminal, a plain line
// every few seconds otherwise.
type progress struct {
	w      io.Writer
	tty    bool
	label  string
	unit   string
	total  int64
	start  time.Time
	drawn  time.Time
	n      int64
	closed bool
}

// plainEvery is how often plain progress lines are printed.
const plainEvery = 2 * time.Second

func (c *cli) progress(label, unit string, total int64) *progress {
	now := time.Now()
	return &progress{w: c.stderr, tty: isTerminal(c.stdout) && isTerminal(c.stderr), label: label, unit: unit, total: total, start: now, drawn: now}
}

// set records that n of the total are done.
func (p *progress) set(n int64) {
	p.n = n
	now := time.Now()
	if p.tty && now.Sub(p.drawn) >= 100*time.Millisecond {
		p.drawn = now
		fmt.Fprintf(p.w, "\r%s", p.bar(now))
	} else if !p.tty && now.Sub(p.drawn) >= plainEvery {
		p.drawn = now
		fmt.Fprintf(p.w, "%s: %s\n", p.label, p.counts(now))
	}
}

// done draws the final state and ends the bar's line.
func (p *progress) done() {
	if p.closed {
		return
	}
	p.closed = true
	now := time.Now()
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\n", p.bar(now))
		return
	}
	fmt.Fprintf(p.w, "%s: %s, done in %v\n", p.label, p.counts(now), now.Sub(p.start).Round(time.Millisecond))
}

func (p *progress) counts(now time.Time) string {
	s := fmt.Sprintf("%d/%d %s", p.n, p.total, p.unit)
	if p.total > 0 {
		s += fmt.Sprintf(" (%d%%)", min(100, p.n*100/p.total))
	}
	if el := now.Sub(p.start).Seconds(); el > 0.5 && p.n > 0 {
		rate := float64(p.n) / el
		s += fmt.Sprintf(", %.0f/s", rate)
		if p.total > p.n {
			s += fmt.Sprintf(", about %v left", time.Duration(float64(p.total-p.n)/rate*float64(time.Second)).Round(time.Second))
		}
	}
	return s
}

func (p *progress) bar(now time.Time) string {
	const width = 30
	filled := width
	if p.total > 0 {
		filled = int(min(p.n, p.total) * width / p.total)
	}
	return fmt.Sprintf("%s [%s%s] %s\x1b[K", p.label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), p.counts(now))
}
