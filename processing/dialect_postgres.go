package processing

import "gorm.io/gorm"

type postgresDialect struct{}

// lockMigration takes a transaction-level advisory lock named after the
// schema and the table, so that two processes creating the table at once
// do not collide in the catalog (CREATE TABLE IF NOT EXISTS alone is not
// safe against that).
func (postgresDialect) lockMigration(tx *gorm.DB, table string) error {
	return tx.Exec(`SELECT pg_advisory_xact_lock(hashtextextended('cairn.processing.migrate:' || current_schema() || '.' || ?, 0))`, table).Error
}

func (postgresDialect) nowMillis() string {
	return `CAST(extract(epoch FROM clock_timestamp()) * 1000 AS bigint)`
}
