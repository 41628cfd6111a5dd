package todo

import "time"

// DateLayout is the date format the API takes: a calendar date, which
// means midnight UTC. RFC 3339 times are accepted too.
const DateLayout = "2006-01-02"

// ParseDate parses a date sent by a client: YYYY-MM-DD (midnight UTC) or an
// RFC 3339 time. The result is in UTC.
func ParseDate(s string) (time.Time, error) {
	t, err := time.Parse(DateLayout, s)
	if err != nil {
		t, err = time.Parse(time.RFC3339, s)
	}
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}
