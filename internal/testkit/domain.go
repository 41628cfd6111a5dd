package testkit

import "github.com/cairnhq/cairn/event"

// The persisted type names of the domain's events.
const (
	TypeOpened    = "opened"
	TypeDeposited = "deposited"
	TypeWithdrawn = "withdrawn"
	TypeNoted     = "noted"
	TypeTick      = "tick"
	// TypeReceiptIssued is what test reactors emit for deposits.
	TypeReceiptIssued = "receipt.issued"
)

// Opened opens an account; its stream is the account.
type Opened struct {
	Owner string `json:"owner"`
}

// Deposited adds Amount to an account.
type Deposited struct {
	Amount int `json:"amount"`
}

// Withdrawn takes Amount from an account.
type Withdrawn struct {
	Amount int `json:"amount"`
}

// Noted is free text, an event most test handlers do not handle.
type Noted struct {
	Text string `json:"text"`
}

// ReceiptIssued is what test reactors emit for a deposit of Amount.
type ReceiptIssued struct {
	Amount int `json:"amount"`
}

// Tick is written by the concurrency tests: which writer, its n-th event.
type Tick struct {
	Writer int `json:"writer"`
	Seq    int `json:"seq"`
}

// NewRegistry returns a new registry with every event type of the domain.
// Tests add their own types to it.
func NewRegistry() *event.Registry {
	reg := event.NewRegistry(event.RegistryOptions{})
	event.MustRegister[Opened](reg, TypeOpened)
	event.MustRegister[Deposited](reg, TypeDeposited)
	event.MustRegister[Withdrawn](reg, TypeWithdrawn)
	event.MustRegister[Noted](reg, TypeNoted)
	event.MustRegister[Tick](reg, TypeTick)
	event.MustRegister[ReceiptIssued](reg, TypeReceiptIssued)
	return reg
}
