package segment

import (
	"bytes"
	stdjson "encoding/json"
	"strconv"
)

// flexID decodes an identifier sent as a JSON string or number. It never
// fails while decoding, so one bad identifier does not hide the field name:
// Parse checks bad afterwards.
type flexID struct {
	s   string
	bad bool // neither string, number nor null
}

// UnmarshalJSON implements json.Unmarshaler for both goccy and encoding/json.
func (f *flexID) UnmarshalJSON(b []byte) error {
	*f = flexID{}
	if len(b) == 0 {
		f.bad = true
		return nil
	}
	switch c := b[0]; {
	case c == '"':
		if bytes.IndexByte(b, '\\') < 0 && len(b) >= 2 {
			f.s = string(b[1 : len(b)-1])
			return nil
		}
		if err := stdjson.Unmarshal(b, &f.s); err != nil {
			f.bad = true
		}
	case c == 'n':
		// null: absent
	case c == '-' || (c >= '0' && c <= '9'):
		f.s = numberID(b)
	default:
		f.bad = true
	}
	return nil
}

// numberID stringifies a JSON number literal: integers without exponent or
// fraction are kept digit for digit (even beyond 2^53); other literals are
// reformatted so 1e3 becomes "1000" and 1.50 becomes "1.5".
func numberID(b []byte) string {
	plain := true
	for i, c := range b {
		if !(c >= '0' && c <= '9') && !(i == 0 && c == '-') {
			plain = false
			break
		}
	}
	if plain {
		return string(b)
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return string(b)
	}
	if f == float64(int64(f)) && f < 1e21 && f > -1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
