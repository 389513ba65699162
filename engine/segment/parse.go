package segment

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	gojson "github.com/goccy/go-json"
)

// Message types, as stored in Event.Type.
const (
	TypeIdentify = "identify"
	TypeTrack    = "track"
	TypePage     = "page"
	TypeScreen   = "screen"
	TypeGroup    = "group"
	TypeAlias    = "alias"
)

// DerivedIDPrefix starts every messageId that Parse derives from the content.
const DerivedIDPrefix = "loupe-"

// wire is the decoding target: the fields Loupe reads, nothing else.
type wire struct {
	Type              string         `json:"type"`
	MessageID         flexID         `json:"messageId"`
	UserID            flexID         `json:"userId"`
	AnonymousID       flexID         `json:"anonymousId"`
	PreviousID        flexID         `json:"previousId"`
	GroupID           flexID         `json:"groupId"`
	Event             string         `json:"event"`
	Name              string         `json:"name"`
	Timestamp         string         `json:"timestamp"`
	OriginalTimestamp string         `json:"originalTimestamp"`
	SentAt            string         `json:"sentAt"`
	ReceivedAt        string         `json:"receivedAt"`
	Traits            map[string]any `json:"traits"`
	Properties        rawValue       `json:"properties"`
	Context           *Context       `json:"context"`
}

// Parse decodes one Segment message (a JSON object) into an Event.
//
// Identifiers sent as JSON numbers are stringified (integers without an
// exponent). Type names are matched case-insensitively and stored in lower
// case. Timestamps are RFC 3339 with or without fractional seconds; a
// date-time without a zone is read as UTC; all times are stored in UTC.
// Event.Timestamp falls back from timestamp to originalTimestamp,
// receivedAt, sentAt and finally now.
//
// When messageId is absent, Parse derives "loupe-" + the hex of the first 16
// bytes of SHA-256 over a canonical encoding of the message (object keys
// sorted, insignificant whitespace dropped, number literals kept as
// written), so re-ingesting the same data yields the same ids.
//
// Every rejection is a *ValidationError.
func Parse(data []byte, now time.Time) (Event, error) {
	return parse(data, now, true)
}

// parse is Parse; fast=false skips walkMessage, for the test that compares
// the two paths.
func parse(data []byte, now time.Time, fast bool) (Event, error) {
	start := skipSpace(data, 0)
	if start == len(data) {
		return Event{}, invalid("", "empty message")
	}
	if data[start] != '{' {
		if err := stdjson.Unmarshal(data, new(any)); err != nil {
			return Event{}, invalid("", "invalid JSON: %v", err)
		}
		return Event{}, invalid("", "not a JSON object")
	}
	var w wire
	spaced, ok := false, false
	if fast {
		spaced, ok = walkMessage(data[start:], &w)
	}
	if !ok {
		w = wire{}
		if !validJSON(data[start:]) {
			// encoding/json names the offending byte.
			if err := decodeStd(data, &w); err != nil {
				return Event{}, err
			}
			return Event{}, invalid("", "invalid JSON")
		}
		if err := decode(data, &w); err != nil {
			return Event{}, err
		}
		spaced = true // compact looks
	}
	ev := Event{
		MessageID:   w.MessageID.s,
		UserID:      w.UserID.s,
		AnonymousID: w.AnonymousID.s,
		PreviousID:  w.PreviousID.s,
		GroupID:     w.GroupID.s,
		Event:       w.Event,
		Name:        w.Name,
		Traits:      w.Traits,
		Context:     w.Context.orZero(),
	}
	switch p := w.Properties; {
	case len(p) == 0 || string(p) == "null":
	case p[0] == '{':
		ev.properties = p
	default:
		return Event{}, invalid("properties", "must be a JSON object")
	}
	for _, f := range [...]struct {
		name string
		id   *flexID
	}{{"messageId", &w.MessageID}, {"userId", &w.UserID}, {"anonymousId", &w.AnonymousID}, {"previousId", &w.PreviousID}, {"groupId", &w.GroupID}} {
		if f.id.bad {
			return Event{}, invalid(f.name, "must be a string or a number")
		}
	}

	switch {
	case w.Type == "":
		return Event{}, invalid("type", "missing type")
	case strings.EqualFold(w.Type, TypeTrack):
		ev.Type = TypeTrack
	case strings.EqualFold(w.Type, TypeIdentify):
		ev.Type = TypeIdentify
	case strings.EqualFold(w.Type, TypePage):
		ev.Type = TypePage
	case strings.EqualFold(w.Type, TypeScreen):
		ev.Type = TypeScreen
	case strings.EqualFold(w.Type, TypeGroup):
		ev.Type = TypeGroup
	case strings.EqualFold(w.Type, TypeAlias):
		ev.Type = TypeAlias
	default:
		return Event{}, invalid("type", "unknown type %q", w.Type)
	}

	switch {
	case ev.Type == TypeTrack && ev.Event == "":
		return Event{}, invalid("event", "track without event name")
	case ev.Type == TypeAlias && ev.UserID == "" && ev.PreviousID == "":
		return Event{}, invalid("userId", "alias without userId and previousId")
	case ev.Type != TypeAlias && ev.UserID == "" && ev.AnonymousID == "":
		return Event{}, invalid("userId", "%s without userId and anonymousId", ev.Type)
	}

	var err error
	if ev.OriginalTimestamp, err = parseTimeField("originalTimestamp", w.OriginalTimestamp); err != nil {
		return Event{}, err
	}
	if ev.SentAt, err = parseTimeField("sentAt", w.SentAt); err != nil {
		return Event{}, err
	}
	if ev.ReceivedAt, err = parseTimeField("receivedAt", w.ReceivedAt); err != nil {
		return Event{}, err
	}
	if ev.Timestamp, err = parseTimeField("timestamp", w.Timestamp); err != nil {
		return Event{}, err
	}
	for _, t := range [...]time.Time{ev.OriginalTimestamp, ev.ReceivedAt, ev.SentAt, now.UTC()} {
		if !ev.Timestamp.IsZero() {
			break
		}
		ev.Timestamp = t
	}

	ev.Raw = data[start:]
	if spaced {
		ev.Raw = compact(ev.Raw)
	}
	if ev.MessageID == "" {
		ev.MessageID = deriveMessageID(ev.Raw)
	}
	return ev, nil
}

// decode runs goccy/go-json. When goccy fails, or panics on hostile input,
// it decodes again with encoding/json, which is slower but never panics and
// names the offending field by its JSON key; its verdict is final.
func decode(data []byte, w *wire) error {
	if decodeGoccy(data, w) != nil {
		return decodeStd(data, w)
	}
	return nil
}

// decodeGoccy runs goccy/go-json, turning a panic on hostile input into an
// error.
func decodeGoccy(data []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("goccy/go-json panicked: %v", r)
		}
	}()
	return gojson.Unmarshal(data, v)
}

// decodeStd decodes with encoding/json, mapping its errors to
// *ValidationError.
func decodeStd(data []byte, w *wire) error {
	*w = wire{}
	err := stdjson.Unmarshal(data, w)
	if err == nil {
		return nil
	}
	var te *stdjson.UnmarshalTypeError
	if !errors.As(err, &te) || te.Field == "" {
		return invalid("", "invalid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	field := te.Field
	if i := strings.IndexByte(field, '.'); i >= 0 {
		field = field[:i]
	}
	switch field {
	case "traits", "properties", "context":
		return invalid(field, "must be a JSON object")
	}
	return invalid(field, "must be a string")
}

// parseTimeField parses an ISO-8601 timestamp; "" means absent.
func parseTimeField(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := parseTime(s)
	if err != nil {
		return time.Time{}, invalid(field, "malformed timestamp %q", s)
	}
	return t, nil
}

var zonelessLayouts = [...]string{
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999",
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err == nil {
		return t.UTC(), nil
	}
	for _, layout := range zonelessLayouts {
		if t, err2 := time.Parse(layout, s); err2 == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, err
}

// deriveMessageID hashes the canonical form of the JSON message
// (appendCanonical) without its messageId member.
func deriveMessageID(raw []byte) string {
	c, ok := appendCanonical(make([]byte, 0, len(raw)+64), raw, "messageId")
	if !ok {
		// Unreachable for a message Parse accepted; hash the bytes as
		// a string, as ever.
		c = strconv.AppendQuote(c[:0], string(raw))
	}
	sum := sha256.Sum256(c)
	return DerivedIDPrefix + hex.EncodeToString(sum[:16])
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// compact returns src without insignificant whitespace: src itself when it
// has none, as SDKs send it, else a compacted copy. Not copying saved the 1M
// demo 5.7 GB of allocation. src must be valid JSON (Parse only calls it
// after validJSON).
func compact(src []byte) []byte {
	var dst []byte // nil while src needs no change
	run := 0
	for i := 0; i < len(src); i++ {
		switch src[i] {
		case '"':
			if i = stringEnd(src, i+1); i < 0 {
				i = len(src)
			}
		case ' ', '\t', '\n', '\r':
			if dst == nil {
				dst = make([]byte, 0, len(src))
			}
			dst = append(dst, src[run:i]...)
			run = i + 1
		}
	}
	if dst == nil {
		return src
	}
	return append(dst, src[min(run, len(src)):]...)
}

// stringEnd returns the index of the quote closing the JSON string whose
// contents start at i, or -1 when it is unterminated.
func stringEnd(b []byte, i int) int {
	for i <= len(b) {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return -1
		}
		i += j
		n := 0
		for k := i - 1; k >= 0 && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return i
		}
		i++
	}
	return -1
}
