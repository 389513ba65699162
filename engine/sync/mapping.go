package sync

import (
	"crypto/sha256"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// Mapping turns a record (a PostgreSQL row, or an HTTP record that is not
// already a Segment message) into a Segment-spec message. Every value is a
// column name (PostgreSQL) or a dot-separated field path (HTTP).
type Mapping struct {
	// Type is identify or track. Default: track when Event or EventName is
	// set, identify otherwise.
	Type        string `yaml:"type,omitempty" json:"type,omitempty"`
	UserID      string `yaml:"user_id,omitempty" json:"user_id,omitempty"`
	AnonymousID string `yaml:"anonymous_id,omitempty" json:"anonymous_id,omitempty"`
	// Event is the column holding the event name; EventName is a constant
	// event name. Track needs one of them.
	Event     string `yaml:"event,omitempty" json:"event,omitempty"`
	EventName string `yaml:"event_name,omitempty" json:"event_name,omitempty"`
	// Timestamp is the event time column; default: the source's cursor
	// column for PostgreSQL, receive time for HTTP.
	Timestamp string `yaml:"timestamp,omitempty" json:"timestamp,omitempty"`
	// MessageID is a column used verbatim as the messageId. Leave it empty
	// for PostgreSQL so that an updated row is a new event: the default id
	// is derived from source name, primary key and cursor value.
	MessageID string `yaml:"message_id,omitempty" json:"message_id,omitempty"`
	// Traits and Properties map a trait or property name to a column.
	Traits     map[string]string `yaml:"traits,omitempty" json:"traits,omitempty"`
	Properties map[string]string `yaml:"properties,omitempty" json:"properties,omitempty"`
	// Rest sends every column not used above to "traits" or "properties".
	Rest string `yaml:"rest,omitempty" json:"rest,omitempty"`
}

func (m *Mapping) msgType() string {
	if m.Type != "" {
		return m.Type
	}
	if m.Event != "" || m.EventName != "" {
		return "track"
	}
	return "identify"
}

func (m *Mapping) validate() error {
	switch m.msgType() {
	case "identify":
		if m.Event != "" || m.EventName != "" {
			return errors.New("identify mappings take no event")
		}
	case "track":
		if m.Event == "" && m.EventName == "" {
			return errors.New("track needs event (a column) or event_name (a constant)")
		}
	default:
		return fmt.Errorf("type %q: want identify or track", m.Type)
	}
	if m.UserID == "" && m.AnonymousID == "" {
		return errors.New("user_id or anonymous_id is required")
	}
	switch m.Rest {
	case "", "traits", "properties":
	default:
		return fmt.Errorf("rest %q: want traits or properties", m.Rest)
	}
	return nil
}

// Record is one input row: a field lookup plus the field names in order
// (for Rest).
type Record interface {
	Get(field string) (any, bool)
	Fields() []string
}

// MapRecord is a Record over a decoded JSON object; fields are dot paths.
type MapRecord map[string]any

// Get follows a dot-separated path.
func (r MapRecord) Get(field string) (any, bool) {
	var cur any = map[string]any(r)
	for _, part := range strings.Split(field, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// Fields lists the top-level keys, sorted.
func (r MapRecord) Fields() []string {
	out := make([]string, 0, len(r))
	for k := range r {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// rowRecord is a PostgreSQL row.
type rowRecord struct {
	names []string
	index map[string]int
	vals  []any
}

func (r rowRecord) Get(field string) (any, bool) {
	i, ok := r.index[field]
	if !ok {
		return nil, false
	}
	return r.vals[i], true
}

func (r rowRecord) Fields() []string { return r.names }

// MappingError says why a record does not fit the mapping; such records are
// quarantined.
type MappingError struct {
	Field  string
	Reason string
}

func (e *MappingError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

func mapErr(field, format string, args ...any) *MappingError {
	return &MappingError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Apply builds the Segment message for rec. defaultID is the messageId used
// when the mapping names no message_id column; defaultTime is the timestamp
// used when it names no timestamp column (zero: none). Values that do not fit
// return a *MappingError.
func (m *Mapping) Apply(rec Record, defaultID string, defaultTime any) ([]byte, error) {
	typ := m.msgType()
	msg := map[string]any{"type": typ}
	used := map[string]bool{}
	get := func(field string) (any, bool) {
		used[field] = true
		v, ok := rec.Get(field)
		if !ok {
			return nil, false
		}
		return v, v != nil
	}
	if m.UserID != "" {
		if v, ok := get(m.UserID); ok {
			s, err := idString(v)
			if err != nil {
				return nil, mapErr(m.UserID, "userId: %v", err)
			}
			msg["userId"] = s
		}
	}
	if m.AnonymousID != "" {
		if v, ok := get(m.AnonymousID); ok {
			s, err := idString(v)
			if err != nil {
				return nil, mapErr(m.AnonymousID, "anonymousId: %v", err)
			}
			msg["anonymousId"] = s
		}
	}
	if msg["userId"] == nil && msg["anonymousId"] == nil {
		return nil, mapErr("", "no userId or anonymousId (null or missing)")
	}
	if typ == "track" {
		name := m.EventName
		if m.Event != "" {
			v, ok := get(m.Event)
			if !ok {
				return nil, mapErr(m.Event, "event name is null or missing")
			}
			s, isStr := v.(string)
			if !isStr || strings.TrimSpace(s) == "" {
				return nil, mapErr(m.Event, "event name must be a non-empty string, got %s", describe(v))
			}
			name = s
		}
		msg["event"] = name
	}
	var ts any
	if m.Timestamp != "" {
		v, ok := get(m.Timestamp)
		if !ok {
			return nil, mapErr(m.Timestamp, "timestamp is null or missing")
		}
		ts = v
	} else if defaultTime != nil {
		ts = defaultTime
	}
	if ts != nil {
		field := m.Timestamp
		t, err := toTime(ts)
		if err != nil {
			return nil, mapErr(field, "timestamp: %v", err)
		}
		msg["timestamp"] = t.UTC().Format(time.RFC3339Nano)
	}
	id := defaultID
	if m.MessageID != "" {
		v, ok := get(m.MessageID)
		if !ok {
			return nil, mapErr(m.MessageID, "messageId is null or missing")
		}
		s, err := idString(v)
		if err != nil {
			return nil, mapErr(m.MessageID, "messageId: %v", err)
		}
		id = s
	}
	if id != "" {
		msg["messageId"] = id
	}
	bag := func(spec map[string]string, key string) error {
		if len(spec) == 0 {
			return nil
		}
		out := make(map[string]any, len(spec))
		for name, field := range spec {
			v, ok := get(field)
			if !ok {
				continue // null values are left out, not sent as null
			}
			jv, err := jsonValue(v)
			if err != nil {
				return mapErr(field, "%s.%s: %v", key, name, err)
			}
			out[name] = jv
		}
		msg[key] = out
		return nil
	}
	if err := bag(m.Traits, "traits"); err != nil {
		return nil, err
	}
	if err := bag(m.Properties, "properties"); err != nil {
		return nil, err
	}
	if m.Rest != "" {
		out, _ := msg[m.Rest].(map[string]any)
		if out == nil {
			out = map[string]any{}
		}
		for _, f := range rec.Fields() {
			if used[f] || strings.HasPrefix(f, "__loupe_") {
				continue
			}
			v, _ := rec.Get(f)
			if v == nil {
				continue
			}
			if _, dup := out[f]; dup {
				continue
			}
			jv, err := jsonValue(v)
			if err != nil {
				return nil, mapErr(f, "%s.%s: %v", m.Rest, f, err)
			}
			out[f] = jv
		}
		msg[m.Rest] = out
	}
	// identify carries traits at the top level; track keeps properties. A
	// track with traits puts them in context.traits, as Segment does.
	if typ == "track" {
		if t, ok := msg["traits"]; ok {
			delete(msg, "traits")
			msg["context"] = map[string]any{"traits": t}
		}
	} else if p, ok := msg["properties"]; ok {
		// identify has no properties in the spec: merge them into traits.
		t, _ := msg["traits"].(map[string]any)
		if t == nil {
			t = map[string]any{}
		}
		for k, v := range p.(map[string]any) {
			if _, dup := t[k]; !dup {
				t[k] = v
			}
		}
		delete(msg, "properties")
		msg["traits"] = t
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, mapErr("", "encode: %v", err)
	}
	return b, nil
}

// DeriveMessageID is the messageId of a PostgreSQL row: the same row at the
// same cursor value always gets the same id (a re-read is a duplicate), an
// updated row a new one.
func DeriveMessageID(source, id, cursor string) string {
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write([]byte(cursor))
	return "sync-" + hex.EncodeToString(h.Sum(nil)[:16])
}

func describe(v any) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// idString turns an identifier value into a string: strings, integers,
// UUIDs and integral numerics are accepted.
func idString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		if strings.TrimSpace(x) == "" {
			return "", errors.New("empty string")
		}
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	case int16:
		return strconv.FormatInt(int64(x), 10), nil
	case int:
		return strconv.Itoa(x), nil
	case uint32:
		return strconv.FormatUint(uint64(x), 10), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return strconv.FormatInt(int64(x), 10), nil
		}
		return "", fmt.Errorf("wrong type: non-integral number %v", x)
	case json.Number:
		if _, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return string(x), nil
		}
		return "", fmt.Errorf("wrong type: non-integral number %s", x)
	case [16]byte:
		return uuidString(x), nil
	case pgtype.Numeric:
		if x.Valid && !x.NaN && x.InfinityModifier == pgtype.Finite && x.Exp >= 0 {
			n := new(big.Int).Set(x.Int)
			n.Mul(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(x.Exp)), nil))
			return n.String(), nil
		}
		return "", errors.New("wrong type: non-integral numeric")
	}
	return "", fmt.Errorf("wrong type %s", describe(v))
}

func uuidString(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

// toTime reads a timestamp: time.Time, RFC 3339 or PostgreSQL text, or a
// Unix time in seconds (or milliseconds when above 1e11).
func toTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case pgtype.Timestamptz:
		if x.Valid && x.InfinityModifier == pgtype.Finite {
			return x.Time, nil
		}
		return time.Time{}, errors.New("infinite or invalid timestamp")
	case string:
		s := strings.TrimSpace(x)
		for _, l := range timeLayouts {
			if t, err := time.Parse(l, s); err == nil {
				return t, nil
			}
		}
		return time.Time{}, fmt.Errorf("cannot parse %q as a time", truncate(x, 64))
	case int64:
		return unixTime(float64(x)), nil
	case int32:
		return unixTime(float64(x)), nil
	case float64:
		return unixTime(x), nil
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return time.Time{}, err
		}
		return unixTime(f), nil
	}
	return time.Time{}, fmt.Errorf("wrong type %s", describe(v))
}

func unixTime(f float64) time.Time {
	if math.Abs(f) > 1e11 {
		f /= 1000
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// jsonValue converts a database or JSON value to something encoding/json
// writes faithfully. bytea and unknown types are a *MappingError reason.
func jsonValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, string, bool, int, int8, int16, int32, int64, uint8, uint16, uint32, uint64, json.Number:
		return x, nil
	case float32:
		return jsonValue(float64(x))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("wrong type: %v is not a JSON number", x)
		}
		return x, nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case [16]byte:
		return uuidString(x), nil
	case map[string]any:
		return x, nil
	case []any:
		return x, nil
	case netip.Prefix:
		return x.String(), nil
	case netip.Addr:
		return x.String(), nil
	case time.Duration:
		return x.String(), nil
	case pgtype.Numeric:
		if !x.Valid {
			return nil, nil
		}
		if x.NaN || x.InfinityModifier != pgtype.Finite {
			return nil, errors.New("wrong type: numeric NaN or infinity")
		}
		b, err := x.MarshalJSON()
		if err != nil {
			return nil, err
		}
		return json.Number(b), nil
	case []byte:
		return nil, errors.New("wrong type: binary data (bytea) cannot be a trait or property")
	case driver.Valuer:
		dv, err := x.Value()
		if err != nil {
			return nil, err
		}
		if s, ok := dv.(string); ok {
			return s, nil
		}
		if _, isValuer := dv.(driver.Valuer); !isValuer && dv != nil {
			return jsonValue(dv)
		}
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, nil
	case []int64:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, nil
	}
	return nil, fmt.Errorf("wrong type %s", describe(v))
}
