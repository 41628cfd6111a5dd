package projections

import (
	"context"

	"gorm.io/gorm"
)

// Todo is a row of the outstanding and scheduled lists, as the API shows it.
type Todo struct {
	TodoID           string  `json:"todo_id" gorm:"column:todo_id"`
	Title            *string `json:"title" gorm:"column:title"`
	Description      *string `json:"description" gorm:"column:description"`
	DueDate          *string `json:"due_date" gorm:"column:due_date"`
	StakeholderEmail *string `json:"stakeholder_email" gorm:"column:stakeholder_email"`
}

// CompletedTodo is a row of the completed list.
type CompletedTodo struct {
	Todo
	CompletedOn string `json:"completed_on" gorm:"column:completed_on"`
}

const todoColumns = "todo_id, title, description, due_date, stakeholder_email"

// Outstanding returns the todos added and neither completed nor abandoned,
// in the order they were added.
func Outstanding(ctx context.Context, db *gorm.DB) ([]Todo, error) {
	return query[Todo](ctx, db, `SELECT `+todoColumns+` FROM `+OutstandingName+` ORDER BY added_position`)
}

// Scheduled returns the outstanding todos that have a due date, in the
// order they were added.
func Scheduled(ctx context.Context, db *gorm.DB) ([]Todo, error) {
	return query[Todo](ctx, db, `SELECT `+todoColumns+` FROM `+ScheduledName+` WHERE due_date IS NOT NULL ORDER BY added_position`)
}

// Completed returns the completed todos, in the order they were completed.
func Completed(ctx context.Context, db *gorm.DB) ([]CompletedTodo, error) {
	return query[CompletedTodo](ctx, db, `SELECT `+todoColumns+`, completed_on FROM `+CompletedName+` ORDER BY completed_position`)
}

// query returns the rows of a query, an empty slice (never nil) when there
// are none.
func query[T any](ctx context.Context, db *gorm.DB, sql string) ([]T, error) {
	rows := []T{}
	if err := db.WithContext(ctx).Raw(sql).Scan(&rows).Error; err != nil {
		return nil, err
	}
	return rows, nil
}
