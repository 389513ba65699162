package segment

import (
	"bytes"
	stdjson "encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// appendCanonical appends the canonical encoding of the valid JSON value v
// (white space allowed): object members sorted by key, a key given twice
// kept at its last value, strings Go-quoted (strconv.Quote) after JSON
// unescaping, numbers as written, and at the top level the member named
// drop left out. It is what decoding v with encoding/json (UseNumber) and
// writing the result out in that form gives, byte for byte: derived
// messageIds are its hash, and a message ingested again, by this build or a
// later one, must get the same id (TestCanonicalMatchesDecoded keeps the
// decoding form as the reference). Working on the bytes costs a fraction of
// the decode into maps it replaced.
//
// ok is false when v is not valid JSON.
func appendCanonical(dst, v []byte, drop string) (_ []byte, ok bool) {
	if !validJSON(v) {
		return dst, false
	}
	i := skipSpace(v, 0)
	return appendCanonicalValue(dst, v[i:skipValue(v, i)], drop), true
}

// canonMember is one member of an object being put in canonical order.
type canonMember struct {
	key      []byte // decoded
	val      []byte
	position int
}

// appendCanonicalValue appends the canonical form of the valid JSON value
// v, which has no white space around it.
func appendCanonicalValue(dst, v []byte, drop string) []byte {
	switch v[0] {
	case '{':
		var ms []canonMember
		eachMember(v, func(m member) {
			key := jsonText(m.key)
			if drop != "" && string(key) == drop {
				return
			}
			ms = append(ms, canonMember{key: key, val: v[m.start:m.end], position: len(ms)})
		})
		// Sorted by key, the later of equal keys first, so the value kept
		// for a repeated key is its last, as encoding/json keeps it.
		slices.SortFunc(ms, func(a, b canonMember) int {
			if c := bytes.Compare(a.key, b.key); c != 0 {
				return c
			}
			return b.position - a.position
		})
		dst = append(dst, '{')
		for i, m := range ms {
			if i > 0 && bytes.Equal(m.key, ms[i-1].key) {
				continue
			}
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendQuoted(dst, m.key)
			dst = append(dst, ':')
			dst = appendCanonicalValue(dst, m.val, "")
		}
		return append(dst, '}')
	case '[':
		spans, _ := elements(v)
		dst = append(dst, '[')
		for i, s := range spans {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendCanonicalValue(dst, v[s[0]:s[1]], "")
		}
		return append(dst, ']')
	case '"':
		return appendQuoted(dst, jsonText(v[1:len(v)-1]))
	default: // numbers as written; true, false and null are already canonical
		return append(dst, v...)
	}
}

// jsonText decodes body, the contents of a valid JSON string between its
// quotes, as encoding/json does: escapes decoded, bytes that are not UTF-8
// (and lone surrogates) becoming U+FFFD. Without escapes and with valid
// UTF-8 that is body itself.
func jsonText(body []byte) []byte {
	if !slices.Contains(body, '\\') && utf8.Valid(body) {
		return body
	}
	quoted := make([]byte, 0, len(body)+2)
	quoted = append(append(append(quoted, '"'), body...), '"')
	var out string
	stdjson.Unmarshal(quoted, &out) // a valid string: cannot fail
	return []byte(out)
}

// appendQuoted appends s as strconv.Quote writes it, copying it as it is
// when it is printable ASCII without quotes or backslashes, as most are.
func appendQuoted(dst, s []byte) []byte {
	for _, c := range s {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return strconv.AppendQuote(dst, string(s))
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
