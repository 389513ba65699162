package engine

import (
	"encoding/json"
	"errors"
	"time"
)

// Errors callers branch on.
var (
	// ErrNotFound: the REF names no profile.
	ErrNotFound = errors.New("not found")
	// ErrBadRef: the REF is neither a profile id nor TYPE:VALUE.
	ErrBadRef = errors.New("bad reference")
)

// Identity is one identifier of a profile.
type Identity struct {
	Type      string    `json:"type"`
	Value     string    `json:"value"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// BlockedIdentifier is an identifier value the blocklist kept out of
// identity resolution, with how often it was seen on this profile's events.
type BlockedIdentifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// TraitValue is one value of a trait with its provenance.
type TraitValue struct {
	Value     any       `json:"value"`
	Time      time.Time `json:"time"`
	MessageID string    `json:"message_id"`
	// Source is "event" for values from ingested events and
	// "rectification" for values set by `loupe profile set-trait`.
	Source string `json:"source,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Trait is the current value of a trait and its earlier values, newest
// first.
type Trait struct {
	TraitValue
	History []TraitValue `json:"history"`
}

// EventStats aggregates one event name on one profile.
type EventStats struct {
	Count int64              `json:"count"`
	First time.Time          `json:"first"`
	Last  time.Time          `json:"last"`
	Sums  map[string]float64 `json:"sums,omitempty"`
}

// Profile is a unified customer profile. Its JSON is the stable shape
// `loupe profile show --json` prints: lists and maps are never null.
type Profile struct {
	ID         string                `json:"id"`
	MergedIDs  []string              `json:"merged_ids"`
	Identities []Identity            `json:"identities"`
	Blocked    []BlockedIdentifier   `json:"blocked"`
	Traits     map[string]Trait      `json:"traits"`
	Events     map[string]EventStats `json:"events"`
	EventCount int64                 `json:"event_count"`
	FirstSeen  time.Time             `json:"first_seen"`
	LastSeen   time.Time             `json:"last_seen"`
}

// ProfileSummary is what a list row shows of a profile.
type ProfileSummary struct {
	ID         string         `json:"id"`
	Email      string         `json:"email,omitempty"`
	UserID     string         `json:"user_id,omitempty"`
	Phone      string         `json:"phone,omitempty"`
	Traits     map[string]any `json:"traits,omitempty"`
	EventCount int64          `json:"event_count"`
	FirstSeen  time.Time      `json:"first_seen"`
	LastSeen   time.Time      `json:"last_seen"`
}

// StoredEvent is one ingested event as kept in the store.
type StoredEvent struct {
	ProfileID string          `json:"profile_id"`
	MessageID string          `json:"message_id"`
	Type      string          `json:"type"`
	Name      string          `json:"name,omitempty"` // event name (track) or page/screen name
	Time      time.Time       `json:"time"`
	Raw       json.RawMessage `json:"raw"`
}

// EventPage is one page of a profile's events, newest first. Next is the
// cursor for the following page, empty at the end.
type EventPage struct {
	Events []StoredEvent `json:"events"`
	Next   string        `json:"next,omitempty"`
}

// Stats summarises the store.
type Stats struct {
	Profiles      int64            `json:"profiles"`
	Events        int64            `json:"events"`
	Identifiers   map[string]int64 `json:"identifiers"`
	Merges        int64            `json:"merges"`
	RefusedMerges int64            `json:"refused_merges"`
	Blocked       int64            `json:"blocked"`
	Rejected      int64            `json:"rejected"`
	Suppressed    int64            `json:"suppressed"`
}

// IngestStats counts what one ingest did.
type IngestStats struct {
	Read            int64         `json:"read"`
	Ingested        int64         `json:"ingested"`
	Duplicates      int64         `json:"duplicates"`
	Rejected        int64         `json:"rejected"`
	Suppressed      int64         `json:"suppressed"`
	ProfilesCreated int64         `json:"profiles_created"`
	Merges          int64         `json:"merges"`
	RefusedMerges   int64         `json:"refused_merges"`
	Elapsed         time.Duration `json:"-"`
}

// Link is one stored edge of the identity graph.
type Link struct {
	From      string    `json:"from"` // "type:value"
	To        string    `json:"to"`
	MessageID string    `json:"message_id"`
	Time      time.Time `json:"time"`
}

// RefusedMerge records a merge that identity rules refused.
type RefusedMerge struct {
	MessageID string    `json:"message_id"`
	Time      time.Time `json:"time"`
	Reason    string    `json:"reason"`
	Dropped   []string  `json:"dropped"`
	Kept      []string  `json:"kept"`
	ProfileID string    `json:"profile_id"` // the profile the event went to
}

// WhyResult explains how two identifiers are connected, or why not.
type WhyResult struct {
	Connected bool           `json:"connected"`
	Path      []Link         `json:"path"`
	Refused   []RefusedMerge `json:"refused"`
}

// IdentifierMatch is one hit of an identifier prefix search.
type IdentifierMatch struct {
	Type      string `json:"type"`
	Value     string `json:"value"`
	ProfileID string `json:"profile_id"`
}

// Message is one raw Segment message handed to IngestBatch by a sync
// source, with where it came from for error reports.
type Message struct {
	Data   []byte
	Source string // file name, source name, or URL
	Line   int    // line or row number, 1-based; 0 if not meaningful
}

// Checkpoint is a sync source's position, committed in the same
// transaction as the events it covers.
type Checkpoint struct {
	Source string
	Value  []byte
}
