package main

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"gorm.io/gorm"

	"github.com/cairnhq/cairn/admin"
	"github.com/cairnhq/cairn/eventstore"
)

// adminMain runs `todo admin …`: Cairn's admin command on the app's
// database (-db, TODO_DB, todo.db by default), with the app's event types
// and processors, so that check decodes through the app's registry, reset
// empties a projection's tables and rebuild replays a projector. It returns
// the exit status.
func adminMain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, logger *slog.Logger) int {
	return admin.Main(ctx, args, admin.Config{
		Name:      "todo admin",
		DBEnv:     "TODO_DB",
		DefaultDB: "todo.db",
		Getenv:    getenv,
		Open:      openDB,
		Logger:    logger,
		App: func(db *gorm.DB, opts eventstore.Options) (admin.App, error) {
			if opts.TablePrefix != "" {
				return admin.App{}, errors.New("the todo app keeps its tables under Cairn's default prefix: drop -prefix")
			}
			a, err := newApp(db, config{logger: logger})
			if err != nil {
				return admin.App{}, err
			}
			return admin.App{Store: a.store, Processors: []admin.Processor{a.outstanding, a.scheduled, a.completed, a.notifier}}, nil
		},
	}, stdout, stderr)
}
