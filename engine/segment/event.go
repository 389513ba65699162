// Package segment decodes events in the Segment Tracking API spec
// (identify, track, page, screen, group, alias) from NDJSON, JSON arrays,
// batch envelopes and gzip streams.
package segment

import "time"

// Event is one decoded Segment-spec message.
type Event struct {
	Type        string // identify, track, page, screen, group or alias
	MessageID   string // as sent, or derived from the content when absent
	UserID      string
	AnonymousID string
	PreviousID  string // alias only
	GroupID     string // group only
	Event       string // track only
	Name        string // page and screen

	// Timestamp is the time the event happened: timestamp, else
	// originalTimestamp, else receivedAt, else sentAt, else the ingest clock.
	Timestamp         time.Time
	OriginalTimestamp time.Time
	SentAt            time.Time
	ReceivedAt        time.Time

	Traits map[string]any // identify and group traits
	// properties is the JSON object of track, page and screen properties
	// as sent (nil when absent or null). The engine reads a few members
	// (PropertyValues); decoding all of them into a map was a fifth of Parse.
	properties []byte
	// Context holds the members of context Loupe reads; the rest of
	// context is validated and kept in Raw.
	Context Context

	// Raw is the message as received, compacted JSON, for display and export.
	// It shares the bytes Parse was given when they held no whitespace to
	// drop (as SDKs send them), and properties shares them always: the
	// caller must not change those bytes after.
	Raw []byte
}

// Context holds the members of a message's context object that Loupe
// reads, each as decoded from JSON (an object is a map[string]any, a
// number a float64) and nil when absent or null. The others (page,
// userAgent, library, os, campaign, ...) are validated but not decoded:
// they stay in Event.Raw (WholeContext), and decoding them into maps was a
// third of the cost of Parse; a map of these five per event was 2 GB of
// the 1M demo ingest's allocations. As with any struct target of a JSON
// decoder, member names match without regard to case ("IP" fills IP).
type Context struct {
	Traits  any `json:"traits"`
	Device  any `json:"device"`
	IP      any `json:"ip"`
	GPC     any `json:"gpc"`
	Consent any `json:"consent"`
}

// orZero is *c, or the empty Context for a message without one.
func (c *Context) orZero() Context {
	if c == nil {
		return Context{}
	}
	return *c
}
