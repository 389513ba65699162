package segment

import (
	"bytes"
	stdjson "encoding/json"
)

// rawValue keeps a member's JSON as sent (Parse has already validated it).
type rawValue []byte

// UnmarshalJSON implements json.Unmarshaler for both decoders.
func (r *rawValue) UnmarshalJSON(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}

// Property decodes the top-level member name of the event's properties,
// the way a map of them would hold it (numbers as float64, objects as
// maps); false when there is no such member. A name sent twice reads as
// its last value, as in a decoded map.
func (ev *Event) Property(name string) (any, bool) {
	raw, ok := lookupMember(ev.properties, name)
	if !ok {
		return nil, false
	}
	var v any
	if decodeValue(raw, &v) != nil {
		return nil, false
	}
	return v, true
}

// PropertyMap decodes all of the event's properties; nil when it has none.
func (ev *Event) PropertyMap() map[string]any {
	if len(ev.properties) == 0 {
		return nil
	}
	var m map[string]any
	if decodeValue(ev.properties, &m) != nil {
		return nil
	}
	return m
}

// decodeValue decodes validated JSON with goccy/go-json, as Parse does,
// falling back to encoding/json should goccy fail or panic.
func decodeValue(b []byte, v any) error {
	if decodeGoccy(b, v) != nil {
		return stdjson.Unmarshal(b, v)
	}
	return nil
}

// lookupMember returns the raw value of the top-level member name of the
// JSON object obj: the last one when the name repeats.
func lookupMember(obj []byte, name string) (found []byte, ok bool) {
	_, valid := eachMember(obj, func(m member) {
		if keyIs(m.key, name) {
			found, ok = obj[m.start:m.end], true
		}
	})
	return found, ok && valid
}

// keyIs reports whether the JSON string contents key (between its quotes)
// spell name.
func keyIs(key []byte, name string) bool {
	if bytes.IndexByte(key, '\\') < 0 {
		return string(key) == name
	}
	var s string
	q := make([]byte, 0, len(key)+2)
	q = append(append(append(q, '"'), key...), '"')
	return stdjson.Unmarshal(q, &s) == nil && s == name
}
