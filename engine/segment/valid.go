package segment

import (
	"bytes"
	"encoding/binary"
)

// maxNesting is how deep arrays and objects may nest, as in encoding/json.
const maxNesting = 10000

// validJSON reports whether b is exactly one JSON value, with optional
// white space around it, by the grammar of RFC 8259. It accepts what
// encoding/json.Valid accepts (FuzzValidJSON compares the two) at nearly
// three times its speed (BenchmarkValidJSON). Parse needs it because
// goccy/go-json lets invalid JSON through: in members it skips, and even
// in those it decodes ("007", "1.", a control byte in an object key).
func validJSON(b []byte) bool {
	var spaced bool
	i, ok := validValue(b, skipSpace(b, 0), 0, &spaced)
	return ok && skipSpace(b, i) == len(b)
}

// validValue checks the value starting at b[i] and returns the index just
// past it. It sets *spaced when the value holds white space outside its
// strings.
func validValue(b []byte, i, depth int, spaced *bool) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '{' || c == '[':
		if depth >= maxNesting {
			return i, false
		}
		closing := byte(']')
		if c == '{' {
			closing = '}'
		}
		i = noteSpace(b, i+1, spaced)
		if i < len(b) && b[i] == closing {
			return i + 1, true
		}
		for {
			var ok bool
			if c == '{' {
				if i, ok = validKey(b, i, spaced); !ok {
					return i, false
				}
			}
			if i, ok = validValue(b, noteSpace(b, i, spaced), depth+1, spaced); !ok {
				return i, false
			}
			i = noteSpace(b, i, spaced)
			switch {
			case i < len(b) && b[i] == ',':
				i = noteSpace(b, i+1, spaced)
			case i < len(b) && b[i] == closing:
				return i + 1, true
			default:
				return i, false
			}
		}
	case c == '"':
		end := validStringEnd(b, i+1)
		return end + 1, end >= 0
	case c == '-' || ('0' <= c && c <= '9'):
		j := i + 1
		for j < len(b) && isNumberByte(b[j]) {
			j++
		}
		return j, validNumber(b[i:j])
	case c == 't':
		return i + 4, bytes.HasPrefix(b[i:], []byte("true"))
	case c == 'f':
		return i + 5, bytes.HasPrefix(b[i:], []byte("false"))
	case c == 'n':
		return i + 4, bytes.HasPrefix(b[i:], []byte("null"))
	}
	return i, false
}

// noteSpace returns the index of the first byte at or after b[i] that is
// not white space, setting *spaced when it skipped any.
func noteSpace(b []byte, i int, spaced *bool) int {
	j := skipSpace(b, i)
	if j != i {
		*spaced = true
	}
	return j
}

// validKey checks an object key and the colon after it, starting at b[i],
// and returns the index just past the colon.
func validKey(b []byte, i int, spaced *bool) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false
	}
	end := validStringEnd(b, i+1)
	if end < 0 {
		return i, false
	}
	i = noteSpace(b, end+1, spaced)
	if i >= len(b) || b[i] != ':' {
		return i, false
	}
	return i + 1, true
}

// validStringEnd returns the index of the quote that closes the string
// starting at b[i], or -1 when the string is unterminated or holds a
// control byte or a malformed escape. Each byte is looked at a bounded
// number of times, however many escapes the string holds.
func validStringEnd(b []byte, i int) int {
	quote := -1 // index of the first '"' at or after i, once known
	for {
		if quote < i {
			j := bytes.IndexByte(b[i:], '"')
			if j < 0 {
				return -1
			}
			quote = i + j
		}
		seg := b[i:quote]
		k := bytes.IndexByte(seg, '\\')
		if k < 0 {
			if hasControlByte(seg) {
				return -1
			}
			return quote
		}
		if hasControlByte(seg[:k]) {
			return -1
		}
		// Check the escape and go on after it: an escaped quote moves i
		// past the quote found, and the next one is looked for then.
		i += k + 1
		switch b[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i++
		case 'u':
			if i+4 >= len(b) {
				return -1
			}
			for _, h := range b[i+1 : i+5] {
				if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
					return -1
				}
			}
			i += 5
		default:
			return -1
		}
	}
}

// hasControlByte reports whether b holds a byte below 0x20, eight bytes at
// a time.
func hasControlByte(b []byte) bool {
	const lows, highs = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		if (x-0x20*lows)&^x&highs != 0 {
			return true
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}

func isNumberByte(c byte) bool {
	return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// validNumber reports whether b is a JSON number:
// -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}
