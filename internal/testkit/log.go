package testkit

import (
	"io"
	"log/slog"
	"sync"
	"testing"
)

// Logger returns a logger that writes to t's output while t runs and drops
// what is logged once t's cleanup starts: background goroutines may still
// log while the database closes, after t may no longer be written to.
func Logger(t testing.TB) *slog.Logger {
	w := &cutoffWriter{w: t.Output()}
	t.Cleanup(w.cut)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type cutoffWriter struct {
	mu  sync.Mutex
	w   io.Writer
	off bool
}

func (c *cutoffWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.off {
		return len(p), nil
	}
	return c.w.Write(p)
}

func (c *cutoffWriter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off = true
}
