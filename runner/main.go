package runner

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// SignalContext returns a copy of ctx that ends on SIGINT or SIGTERM, for
// a main package; see [signal.NotifyContext]. Call stop to let the
// signals terminate the process again.
func SignalContext(ctx context.Context) (_ context.Context, stop context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

// RunMain runs r until ctx ends or the process receives SIGINT or
// SIGTERM, and shuts it down gracefully (see [Runner.Run]); a second
// signal during the shutdown terminates the process at once. A stop by
// signal or by ctx is a clean exit: RunMain returns nil unless processors
// failed or the grace period ran out.
//
//	func main() {
//		// … open the store, build and migrate the processors …
//		r, err := runner.New(store, runner.Options{}, todoList, mailer)
//		if err != nil {
//			log.Fatal(err)
//		}
//		if err := runner.RunMain(context.Background(), r); err != nil {
//			log.Fatal(err)
//		}
//	}
func RunMain(ctx context.Context, r *Runner) error {
	ctx, stop := SignalContext(ctx)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process
	}()
	return r.Run(ctx)
}
