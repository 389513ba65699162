package rules

import "time"

// Profile is what one rule sees of a unified profile.
type Profile struct {
	ID         string
	Traits     map[string]any      // current values: string, float64, int64, bool, nil, []any, map[string]any
	Identities map[string][]string // identifier type ("email","user_id","phone","device_id","anonymous_id",...) -> values
	FirstSeen  time.Time
	LastSeen   time.Time
	Events     map[string]EventStats // by event name ("Order Completed", "Page Viewed", ...)
	Consent    map[string]bool       // purpose -> consent currently allows it (defaults already applied by the engine)
	Suppressed bool                  // erased or suppressed subject: never matches, never in a sample
}

// EventStats aggregates one event name for one profile.
type EventStats struct {
	Count  int64
	First  time.Time
	Last   time.Time
	Sums   map[string]float64 // all-time sums of numeric properties (e.g. "revenue")
	Recent []Occurrence       // oldest first; the most recent occurrences (the engine caps them at 1000 per name)
}

// Occurrence is one event, for windowed functions.
type Occurrence struct {
	Unix   int64              // event time, seconds
	Values map[string]float64 // the numeric properties summed in Sums
}
