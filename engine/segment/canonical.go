package segment

import (
	stdjson "encoding/json"
	"slices"
	"strconv"
)

// appendCanonical appends a deterministic encoding of a value decoded with
// UseNumber: object keys sorted, strings Go-quoted, numbers as written. It
// is only ever hashed, never parsed back.
func appendCanonical(dst []byte, v any) []byte {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendQuote(dst, k)
			dst = append(dst, ':')
			dst = appendCanonical(dst, v[k])
		}
		return append(dst, '}')
	case []any:
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendCanonical(dst, e)
		}
		return append(dst, ']')
	case string:
		return strconv.AppendQuote(dst, v)
	case stdjson.Number:
		return append(dst, v...)
	case bool:
		return strconv.AppendBool(dst, v)
	default: // nil
		return append(dst, "null"...)
	}
}
