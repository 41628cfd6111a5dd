package testkit

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readyLine is what ChildReady prints.
const readyLine = "cairn testkit: child ready"

// ChildOptions configures [StartChild].
type ChildOptions struct {
	// Run is the -test.run pattern of the child, which is the test
	// binary: "^TestHelperProcess$", or [RunPattern](t) to run the test t
	// again.
	Run string
	// Program, instead of Run, is a program to run with Args: a binary
	// the test built, for instance.
	Program string
	Args    []string
	// Env is added to this process's environment for the child.
	Env []string
	// DropEnv lists prefixes of variable names: the variables of this
	// process's environment that start with one are not passed on.
	DropEnv []string
	// Ready tells the line of the child's standard output that says it
	// is ready; nil means the line [ChildReady] prints. It is called on
	// the goroutine that reads the output, before StartChild returns.
	Ready func(line string) bool
	// NoWait makes StartChild return once the child has started, without
	// waiting for a ready line: for a child that does its work and exits.
	NoWait bool
	// ReadyTimeout, if positive, is how long StartChild waits for the
	// ready line before it kills the child and fails the test.
	ReadyTimeout time.Duration
	// OnLine, if set, is called with each line the child writes to its
	// standard output after its ready line (with NoWait, every line), in
	// order, on one goroutine, with the child (so that it can kill it at a
	// chosen moment).
	OnLine func(c *Child, line string)
	// Stderr, if set, also receives the child's standard error as it
	// comes (the error of [Child.Wait] holds it either way).
	Stderr io.Writer
}

// Child is a running child process started by [StartChild].
type Child struct {
	name  string // for messages: the -test.run flag or the program
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	err   error // set before done is closed

	mu     sync.Mutex
	stdout bytes.Buffer
	stderr lockedBuffer
}

// StartChild starts the test binary again with -test.run=opts.Run (or
// opts.Program) and returns once the child has called [ChildReady] (or
// written the line opts.Ready accepts); it fails t if the child ends
// first. The child is killed, and waited for, when t ends. Under the race
// detector the child exits without the detector's usual one-second pause.
//
// The child is a test that plays the child's part. It calls [ChildReady]
// once it is set up; a child that must not start its work before the
// parent says so then waits in [AwaitRelease] for [Child.Release]. The
// parent reads the child's output as it comes ([ChildOptions.OnLine]),
// kills it ([Child.Kill], SIGKILL: what a crash test wants) or signals it,
// and waits for its exit ([Child.Wait]). A child test usually looks like
// this, skipped when no parent started it:
//
//	func TestHelperProcess(t *testing.T) {
//		if os.Getenv("CAIRN_X_HELPER") == "" {
//			t.Skip("child process of TestCrash")
//		}
//		// open the database named by the environment …
//		testkit.ChildReady()
//		if err := testkit.AwaitRelease(); err != nil {
//			t.Fatal(err)
//		}
//		// work until killed, printing a line per acknowledged step
//	}
//
// With opts.Program the child is another program, a binary the test
// built: opts.Ready then says which line of its output means it is ready
// (the address it serves, say), or opts.NoWait that there is none.
func StartChild(t testing.TB, opts ChildOptions) *Child {
	t.Helper()
	var cmd *exec.Cmd
	var name string
	switch {
	case (opts.Run == "") == (opts.Program == ""):
		t.Fatalf("StartChild: want either a -test.run pattern or a program, have %q and %q", opts.Run, opts.Program)
	case opts.Run != "":
		name = "-test.run=" + opts.Run
		cmd = exec.Command(os.Args[0], name, "-test.count=1")
	default:
		name = strings.Join(append([]string{filepath.Base(opts.Program)}, opts.Args...), " ")
		cmd = exec.Command(opts.Program, opts.Args...)
	}
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return slices.ContainsFunc(opts.DropEnv, func(prefix string) bool { return strings.HasPrefix(kv, prefix) })
	})
	cmd.Env = append(cmd.Env, "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	cmd.Env = append(cmd.Env, opts.Env...)
	c := &Child{name: name, cmd: cmd, done: make(chan struct{})}
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatalf("StartChild: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("StartChild: %v", err)
	}
	cmd.Stderr = &c.stderr
	if opts.Stderr != nil {
		cmd.Stderr = io.MultiWriter(&c.stderr, opts.Stderr)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("StartChild(%s): %v", name, err)
	}
	t.Cleanup(func() {
		c.stdin.Close()
		c.cmd.Process.Kill()
		<-c.done
	})
	isReady := opts.Ready
	if isReady == nil {
		isReady = func(line string) bool { return line == readyLine }
	}
	ready := make(chan bool, 1)
	go c.read(stdout, isReady, opts.NoWait, opts.OnLine, ready)
	if opts.NoWait {
		return c
	}
	var timeout <-chan time.Time
	if opts.ReadyTimeout > 0 {
		timer := time.NewTimer(opts.ReadyTimeout)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case ok := <-ready:
		if !ok {
			<-c.done
			t.Fatalf("child process (%s) ended before it was ready: %v", name, c.err)
		}
	case <-timeout:
		c.cmd.Process.Kill()
		<-c.done
		t.Fatalf("child process (%s) was not ready within %v: %v", name, opts.ReadyTimeout, c.err)
	}
	return c
}

// read reads the child's standard output until it ends, then waits for
// the child. Until it finds the line readyLine accepts, it does not call
// onLine (unless noWait).
func (c *Child) read(r io.Reader, readyLine func(string) bool, noWait bool, onLine func(*Child, string), ready chan<- bool) {
	br := bufio.NewReader(r)
	isReady := noWait
	for {
		line, err := br.ReadString('\n')
		switch {
		case !isReady && readyLine(strings.TrimSuffix(line, "\n")):
			isReady = true
			ready <- true
		default:
			c.mu.Lock()
			c.stdout.WriteString(line)
			c.mu.Unlock()
			if isReady && onLine != nil && strings.HasSuffix(line, "\n") {
				onLine(c, strings.TrimSuffix(line, "\n"))
			}
		}
		if err != nil {
			break
		}
	}
	if err := c.cmd.Wait(); err != nil {
		c.err = fmt.Errorf("child process (%s): %w\nstdout:\n%s\nstderr:\n%s", c.name, err, c.Output(), c.stderr.String())
	}
	if !isReady {
		ready <- false
	}
	close(c.done)
}

// Release lets a child waiting in [AwaitRelease] go on.
func (c *Child) Release(t testing.TB) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatalf("release child process: %v", err)
	}
}

// Kill kills the child with SIGKILL: it gets no chance to clean up, as in
// a crash.
func (c *Child) Kill() error { return c.cmd.Process.Kill() }

// Signal sends sig to the child (syscall.SIGTERM for a graceful stop).
func (c *Child) Signal(sig os.Signal) error { return c.cmd.Process.Signal(sig) }

// Done is closed once the child has exited and its output is read.
func (c *Child) Done() <-chan struct{} { return c.done }

// Wait waits for the child to exit. It returns nil if the child exited
// with status 0 and otherwise an error holding the exit status and
// everything the child wrote.
func (c *Child) Wait() error {
	<-c.done
	return c.err
}

// Killed waits for the child to exit and reports whether SIGKILL ended it.
func (c *Child) Killed() bool {
	<-c.done
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// Output returns what the child has written to its standard output so far,
// without its ready line.
func (c *Child) Output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stdout.String()
}

// Stderr returns what the child has written to its standard error so
// far.
func (c *Child) Stderr() string { return c.stderr.String() }

// ChildReady is called by the child once it is set up: it lets
// [StartChild] return in the parent.
func ChildReady() {
	fmt.Fprintln(os.Stdout, readyLine)
}

// AwaitRelease blocks the child until the parent calls [Child.Release].
// It returns an error if the parent closed the child's standard input
// instead (the parent's test ended).
func AwaitRelease() error {
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil {
		return fmt.Errorf("wait for the parent's release: %w", err)
	}
	if line != "go\n" {
		return fmt.Errorf("wait for the parent's release: unexpected input %q", line)
	}
	return nil
}

// RunPattern returns the -test.run pattern that selects exactly the test
// or subtest t (and, when run, its own subtests).
func RunPattern(t testing.TB) string {
	parts := strings.Split(t.Name(), "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// lockedBuffer is a bytes.Buffer safe for one writer and other readers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
