// Package segment decodes events in the Segment Tracking API spec
// (identify, track, page, screen, group, alias) from NDJSON, JSON arrays,
// batch envelopes and gzip streams.
package segment

import (
	"bytes"
	stdjson "encoding/json"
	"time"
)

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
// number a float64) and nil when absent or null; of device only the id
// is kept (Device), and ip and consent stay JSON (RawJSON). The others (page,
// userAgent, library, os, campaign, ...) are validated but not decoded:
// they stay in Event.Raw (WholeContext), and decoding them into maps was a
// third of the cost of Parse; a map of these five per event was 2 GB of
// the 1M demo ingest's allocations. As with any struct target of a JSON
// decoder, member names match without regard to case ("IP" fills IP).
type Context struct {
	Traits  any     `json:"traits"`
	Device  Device  `json:"device"`
	IP      RawJSON `json:"ip"`
	GPC     any     `json:"gpc"`
	Consent RawJSON `json:"consent"`
}

// RawJSON is a JSON value as the message holds it, whitespace included,
// not decoded; nil when absent or null. Context.Consent is one: four
// events in ten of the demo carry context.consent, nearly always the same
// few banner choices over and over, so the ingest keys what it has worked
// out of them on these bytes and decodes them only for a combination it
// has not seen (Event.ConsentObject). Decoding its two maps in Parse took
// BenchmarkParseConsent's page event from 536 to 1,344 bytes and 9 to 24
// allocations. Context.IP is another: the ingest needs the address only
// for an event that records a consent decision (Event.IPAddress).
type RawJSON []byte

// UnmarshalJSON keeps a copy of b (nil for null). Only Parse's slow path
// calls it.
func (r *RawJSON) UnmarshalJSON(b []byte) error {
	*r = bytes.Clone(rawUnlessNull(bytes.TrimSpace(b)))
	return nil
}

// decode decodes r as Parse decoded such a member before it kept the
// bytes: with the fast path's decoder, which declines escapes and invalid
// UTF-8, else with the slow path's. It is nil when r is absent, is not
// valid JSON, or holds what the decoders cannot take (1e700).
func (r RawJSON) decode() any {
	if !validJSON(r) {
		return nil
	}
	v, _, ok := anyValue(r, skipSpace(r, 0))
	if !ok && decodeSlow(r, &v) != nil {
		return nil
	}
	return v
}

// rawUnlessNull is the JSON value v as a RawJSON, nil for null.
func rawUnlessNull(v []byte) RawJSON {
	if string(v) == "null" {
		return nil
	}
	return v
}

// Device is what Loupe reads of context.device: its id member, as decoded
// from JSON, and nil when absent or when device is not an object. The
// rest of the object (type, manufacturer, model, ...) stays in Event.Raw:
// nine events in ten of the demo carry a device, and decoding it into a
// map took BenchmarkParse's event (an iOS device of six members) from
// 632 to 1,176 bytes and 13 to 31 allocations.
type Device struct {
	ID any
}

// UnmarshalJSON keeps the id member of an object and nothing of any other
// value, reading the object as a map would (exact name, the last of
// duplicates). The other members are left undecoded, as the fast path
// leaves them. Only Parse's slow path calls it, and it decodes with that
// path's decoders: goccy/go-json, else encoding/json.
func (d *Device) UnmarshalJSON(b []byte) error {
	d.ID = nil
	if i := skipSpace(b, 0); i == len(b) || b[i] != '{' {
		return nil
	}
	var members map[string]stdjson.RawMessage
	if err := decodeSlow(b, &members); err != nil {
		return err
	}
	if id, ok := members["id"]; ok {
		return decodeSlow(id, &d.ID)
	}
	return nil
}

// decodeSlow decodes b into v with goccy/go-json, else encoding/json.
func decodeSlow(b []byte, v any) error {
	if decodeGoccy(b, v) == nil {
		return nil
	}
	return stdjson.Unmarshal(b, v)
}

// orZero is *c, or the empty Context for a message without one.
func (c *Context) orZero() Context {
	if c == nil {
		return Context{}
	}
	return *c
}
