package segment

import (
	"bytes"
	stdjson "encoding/json"

	gojson "github.com/goccy/go-json"
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
func decodeValue(b []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = stdjson.Unmarshal(b, v)
		}
	}()
	if gojson.Unmarshal(b, v) != nil {
		return stdjson.Unmarshal(b, v)
	}
	return nil
}

// lookupMember returns the raw value of the top-level member name of the
// JSON object obj (valid JSON, as Parse leaves it): the last one when the
// name repeats. It walks the members as members (scan.go) does, without
// listing them.
func lookupMember(obj []byte, name string) ([]byte, bool) {
	if len(obj) == 0 || obj[0] != '{' {
		return nil, false
	}
	var found []byte
	ok := false
	for i := skipSpace(obj, 1); i < len(obj) && obj[i] == '"'; {
		ke := skipValue(obj, i)
		if ke < 0 {
			return nil, false
		}
		key := obj[i+1 : ke-1]
		i = skipSpace(obj, ke)
		if i >= len(obj) || obj[i] != ':' {
			return nil, false
		}
		vs := skipSpace(obj, i+1)
		ve := skipValue(obj, vs)
		if ve < 0 || ve == vs {
			return nil, false
		}
		if keyIs(key, name) {
			found, ok = obj[vs:ve], true
		}
		if i = skipSpace(obj, ve); i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return found, ok
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
