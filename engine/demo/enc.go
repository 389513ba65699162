package demo

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// enc appends one JSON object to a reused buffer by hand: generating a
// million people with encoding/json would cost more than everything else.
// Keys are trusted constants; values go through appendString.
type enc struct {
	b     []byte
	first bool
}

func (e *enc) open() {
	e.b = append(e.b, '{')
	e.first = true
}

func (e *enc) close() {
	e.b = append(e.b, '}')
	e.first = false
}

func (e *enc) key(k string) {
	if !e.first {
		e.b = append(e.b, ',')
	}
	e.first = false
	e.b = append(e.b, '"')
	e.b = append(e.b, k...)
	e.b = append(e.b, '"', ':')
}

func (e *enc) obj(k string) {
	e.key(k)
	e.open()
}

func (e *enc) arr(k string) {
	e.key(k)
	e.b = append(e.b, '[')
	e.first = true
}

func (e *enc) closeArr() {
	e.b = append(e.b, ']')
	e.first = false
}

// elem starts an object inside an array.
func (e *enc) elem() {
	if !e.first {
		e.b = append(e.b, ',')
	}
	e.open()
}

func (e *enc) str(k, v string) {
	e.key(k)
	e.b = appendString(e.b, v)
}

func (e *enc) int(k string, v int64) {
	e.key(k)
	e.b = strconv.AppendInt(e.b, v, 10)
}

// money writes a number with two decimals (129.90).
func (e *enc) money(k string, cents int64) {
	e.key(k)
	e.b = strconv.AppendInt(e.b, cents/100, 10)
	e.b = append(e.b, '.', byte('0'+cents%100/10), byte('0'+cents%10))
}

func (e *enc) bool(k string, v bool) {
	e.key(k)
	e.b = strconv.AppendBool(e.b, v)
}

func (e *enc) time(k string, t time.Time) {
	e.key(k)
	e.b = append(e.b, '"')
	e.b = appendTime(e.b, t)
	e.b = append(e.b, '"')
}

// appendTime writes t (UTC) as 2006-01-02T15:04:05.000Z.
func appendTime(b []byte, t time.Time) []byte {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	ms := t.Nanosecond() / 1e6
	b = appendPad(b, y, 4)
	b = append(b, '-')
	b = appendPad(b, int(mo), 2)
	b = append(b, '-')
	b = appendPad(b, d, 2)
	b = append(b, 'T')
	b = appendPad(b, h, 2)
	b = append(b, ':')
	b = appendPad(b, mi, 2)
	b = append(b, ':')
	b = appendPad(b, s, 2)
	b = append(b, '.')
	b = appendPad(b, ms, 3)
	return append(b, 'Z')
}

func appendPad(b []byte, v, width int) []byte {
	var tmp [8]byte
	i := len(tmp)
	for ; width > 0 || v > 0; width-- {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, tmp[i:]...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	i := plainPrefix(s)
	if i == len(s) {
		b = append(b, s...)
		return append(b, '"')
	}
	for i < len(s) {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// plainPrefix returns the length of the longest prefix of s that JSON
// takes as it is: printable ASCII other than '"' and '\\'. It tests eight
// bytes at a time (most of what the generator writes is such text; this
// loop was a quarter of its time byte by byte).
func plainPrefix(s string) int {
	const lows, highs = 0x0101010101010101, 0x8080808080808080
	// hasZero sets the high bit of each byte of x that is zero (and may
	// set it above one that is; the bytes are then rechecked one by one).
	hasZero := func(x uint64) uint64 { return (x - lows) &^ x & highs }
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if (x|(x-0x20*lows)&^x|hasZero(x^('"'*lows))|hasZero(x^('\\'*lows)))&highs != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			break
		}
	}
	return i
}
