package processing

import "gorm.io/gorm"

type sqliteDialect struct{}

// lockMigration needs nothing on SQLite: the store's database begins every
// transaction IMMEDIATE, so the migration holds the write lock from its
// first statement.
func (sqliteDialect) lockMigration(*gorm.DB, string) error { return nil }

func (sqliteDialect) nowMillis() string { return `CAST(unixepoch('subsec') * 1000 AS INTEGER)` }
