package rules

import (
	"fmt"
	"strconv"
	"time"
)

// maxWindow bounds window durations (about 100 years).
const maxWindow = 100 * 365 * 24 * time.Hour

// ParseWindow parses a window duration: a positive integer followed by one
// unit, m (minutes), h (hours), d (days of 24h) or w (weeks): "90m", "12h",
// "30d", "2w".
func ParseWindow(s string) (time.Duration, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("bad duration %q: want a number and a unit (m, h, d, w), like \"30d\"", s)
	}
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad duration %q: want a positive whole number and a unit (m, h, d, w), like \"30d\"", s)
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 'm':
		unit = time.Minute
	case 'h':
		unit = time.Hour
	case 'd':
		unit = 24 * time.Hour
	case 'w':
		unit = 7 * 24 * time.Hour
	default:
		return 0, fmt.Errorf("bad duration %q: unknown unit %q (use m, h, d or w)", s, s[len(s)-1:])
	}
	if n > int64(maxWindow/unit) {
		return 0, fmt.Errorf("bad duration %q: longer than 100 years", s)
	}
	return time.Duration(n) * unit, nil
}
