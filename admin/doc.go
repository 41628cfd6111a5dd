// Package admin is Cairn's operating command: look inside a Cairn
// database and act on it — processors' status and lag, streams and events,
// resetting and rebuilding processors, parked events, a decode check of
// every stored event before a release, the store's ordering check on the
// real database, and migrations.
//
// An application mounts it as a subcommand with [Run], giving it its own
// event registry and processors ([Config.App]): the embedded mode, where
// check decodes events through the application's registry and upcasters,
// reset clears a projector's tables through the projector's own Reset, and
// rebuild replays a projector. cmd/cairn runs the same code without an
// application: it works on any Cairn database, shows event data as stored,
// and offers every command that needs no Go types.
//
// The commands, whose names scripts can rely on:
//
//	status [--watch] [--interval D]      every processor: kind, state, owner, lease,
//	                                     position, head, lag (events, seconds),
//	                                     parked count, last error
//	streams [--prefix P] [--limit N]     stream ID, version, first and last recorded time
//	events STREAM | events --all [--after P] [--type T]... [--correlation ID]
//	       [--follow] [--limit N]        one line per event, data as stored
//	reset PROCESSOR [--to POSITION]      fenced reset (a projector's tables too, embedded)
//	rebuild PROJECTOR                    reset and replay, with progress (embedded)
//	parked list|retry|skip PROCESSOR [STREAM]
//	check                                decode every stored event (embedded)
//	verify-order [--events N] [--writers N]
//	migrate                              create or update every table
//
// Every command takes -db (a SQLite file path or a postgres:// URL, by
// default from the environment variable [Config.DBEnv]) and -prefix (the
// table prefix), before or after the command's name. Every command that
// prints data takes --json: one JSON object per line for lists. Exit
// status ([ExitCode]): 0 on success, 1 on an error or a failed check, 2 on
// bad usage. Destructive commands (reset, rebuild, parked skip) ask for
// confirmation when standard input and output are a terminal, need --yes
// otherwise, and log what they did with log/slog. Long work (check,
// rebuild, verify-order) shows a progress bar on a terminal and plain
// progress lines otherwise, on standard error.
package admin
