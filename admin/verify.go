package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/event"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/storetest"
)

// VerifyLine is a line of verify-order's JSON output: one per reader,
// then a summary (Reader empty) with the events written and OK.
type VerifyLine struct {
	Reader     string `json:"reader,omitempty"`
	Written    int    `json:"written"`
	Received   int    `json:"received"`
	Skipped    int    `json:"skipped"`
	Repeated   int    `json:"repeated"`
	OutOfOrder int    `json:"out_of_order"`
	Unexpected int    `json:"unexpected"`
	OK         bool   `json:"ok"`
	Prefix     string `json:"prefix,omitempty"`
}

// runVerifyOrder runs the conformance suite's concurrent-writer ordering
// check ([storetest.VerifyOrder]) on the configured database, with the
// store options the application uses, in tables under a scratch prefix
// that it drops afterwards, interrupted or not.
func runVerifyOrder(ctx context.Context, c *cli, _ []string) error {
	var b [4]byte
	rand.Read(b[:])
	base := c.o.prefix
	if base == "" {
		base = "cairn_"
	}
	opts := c.storeOptions()
	opts.TablePrefix = base + "verify_" + hex.EncodeToString(b[:]) + "_"
	if opts.Logger == nil {
		opts.Logger = c.log
	}
	scratch, err := eventstore.New(c.db, event.NewRegistry(event.RegistryOptions{}), opts)
	if err != nil {
		return err
	}
	defer func() {
		if err := scratch.DropTables(context.WithoutCancel(ctx)); err != nil {
			c.log.ErrorContext(ctx, "admin: verify-order: scratch tables not dropped", "prefix", opts.TablePrefix, "error", err)
		}
	}()
	bar := c.progress("verify-order", "events", int64(c.o.events))
	r, err := storetest.VerifyOrder(ctx, storetest.OrderCheck{
		Open:     func() (*gorm.DB, error) { return c.openDB(c.o.db) },
		Options:  opts,
		Events:   c.o.events,
		Writers:  c.o.writers,
		Progress: func(n, _ int) { bar.set(int64(n)) },
	})
	bar.done()
	if err != nil {
		return err
	}
	tw := c.table()
	if !c.o.json {
		fmt.Fprintln(tw, "READER\tRECEIVED\tSKIPPED\tREPEATED\tOUT OF ORDER\tUNEXPECTED")
	}
	for _, rr := range r.Readers {
		if c.o.json {
			if err := c.emit(VerifyLine{Reader: rr.Name, Written: r.Written, Received: rr.Received, Skipped: rr.Skipped,
				Repeated: rr.Repeated, OutOfOrder: rr.OutOfOrder, Unexpected: rr.Unexpected, OK: rr.OK()}); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\n", rr.Name, rr.Received, rr.Skipped, rr.Repeated, rr.OutOfOrder, rr.Unexpected)
	}
	verr := r.Err()
	if c.o.json {
		if err := c.emit(VerifyLine{Written: r.Written, OK: verr == nil, Prefix: opts.TablePrefix}); err != nil {
			return err
		}
	} else {
		if err := tw.Flush(); err != nil {
			return err
		}
		verdict := "ok: every reader got each acknowledged event once, in order"
		if verr != nil {
			verdict = "FAILED: the global order does not hold on this database"
		}
		fmt.Fprintf(c.stdout, "%d events written by %d writers in tables %s* (dropped): %s\n", r.Written, c.o.writers, opts.TablePrefix, verdict)
	}
	if verr != nil {
		return fmt.Errorf("%w: %w", ErrCheckFailed, verr)
	}
	return nil
}

// MigrateLine is the migrate command's JSON output.
type MigrateLine struct {
	Migrated   bool     `json:"migrated"`
	Processors []string `json:"processors,omitempty"`
}

func runMigrate(ctx context.Context, c *cli, _ []string) error {
	if err := c.store.Migrate(ctx); err != nil {
		return err
	}
	var names []string
	for _, p := range c.procs {
		if err := p.Migrate(ctx); err != nil {
			return err
		}
		names = append(names, p.Name())
	}
	c.log.InfoContext(ctx, "admin: migrated", "processors", names)
	if c.o.json {
		return c.emit(MigrateLine{Migrated: true, Processors: names})
	}
	_, err := fmt.Fprintf(c.stdout, "the store's tables are up to date (and those of %d processors)\n", len(names))
	return err
}
