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

// PropertyValues decodes the top-level members names of the event's
// properties in one pass, each the way a map of them would hold it
// (numbers as float64, objects as maps; the last of a repeated name):
// values[i] is nil when names[i] is absent. It is nil when the event has
// no properties.
func (ev *Event) PropertyValues(names []string) []any {
	if len(ev.properties) == 0 || len(names) == 0 {
		return nil
	}
	raws := make([][]byte, len(names))
	eachMember(ev.properties, func(m member) {
		for i, n := range names {
			if keyIs(m.key, n) {
				raws[i] = ev.properties[m.start:m.end]
			}
		}
	})
	values := make([]any, len(names))
	for i, r := range raws {
		if r != nil && decodeValue(r, &values[i]) != nil {
			values[i] = nil
		}
	}
	return values
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
