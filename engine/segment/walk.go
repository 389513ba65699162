package segment

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// walkMessage is Parse's fast path: one walk over the message that
// validates it (by the rules of validJSON) and fills w, decoding only the
// members w holds. Members Loupe does not read (context.page, userAgent,
// library, ...) are checked and stepped over without building anything.
// Before it, validJSON walked the message, goccy/go-json decoded all of it
// (stepping over the unknown members byte by byte again), and compact
// scanned it a third time for white space.
//
// It reports ok=false, leaving w to be reset, whenever the message is not
// the plain case: invalid JSON, a member name with escapes or non-ASCII
// bytes (which decoders match in their own ways), a member Loupe reads
// given twice, or given a value of the wrong type, a string it decodes
// holding escapes, a number too big for a float64. Parse then takes the
// slow path, whose verdicts, values and error messages are the reference
// (FuzzParseFastMatchesSlow). spaced reports white space outside strings,
// which Raw must not keep.
func walkMessage(b []byte, w *wire) (spaced, ok bool) {
	var seen uint32
	end, ok := walkObject(b, 0, 0, &spaced, func(key []byte, v int) (int, bool) {
		f := wireField(key)
		switch {
		case f == fieldSlow:
			return v, false
		case f == fieldUnknown:
			return validValue(b, v, 1, &spaced)
		case seen&(1<<f) != 0:
			return v, false
		}
		seen |= 1 << f
		if f == fieldContext && b[v] == '{' {
			w.Context = new(Context)
			return walkContext(b, v, w.Context, &spaced)
		}
		e, ok := validValue(b, v, 1, &spaced)
		if !ok {
			return e, false
		}
		return e, w.set(f, b[v:e])
	})
	if !ok || noteSpace(b, end, &spaced) != len(b) {
		return false, false
	}
	return spaced, true
}

// walkContext walks the context object starting at b[i], decoding the
// members Context holds.
func walkContext(b []byte, i int, c *Context, spaced *bool) (int, bool) {
	var seen uint8
	return walkObject(b, i, 1, spaced, func(key []byte, v int) (int, bool) {
		e, ok := validValue(b, v, 2, spaced)
		if !ok {
			return e, false
		}
		f := contextField(key)
		switch {
		case f == fieldSlow || f >= 0 && seen&(1<<f) != 0:
			return e, false
		case f == fieldUnknown:
			return e, true
		}
		seen |= 1 << f
		switch f {
		case contextTraits:
			return e, decodeAny(b[v:e], &c.Traits)
		case contextDevice:
			return e, deviceID(b[v:e], &c.Device.ID)
		case contextIP:
			c.IP = rawUnlessNull(b[v:e])
		case contextGPC:
			return e, decodeAny(b[v:e], &c.GPC)
		case contextConsent:
			c.Consent = rawUnlessNull(b[v:e])
		}
		return e, true
	})
}

// deviceID sets *dst to the id member of v, a valid JSON value, when v is
// an object; any other value has no id. It reports false, for the slow
// path to decide, when a member name needs unescaping or id comes twice.
func deviceID(v []byte, dst *any) bool {
	if v[0] != '{' {
		return true
	}
	found := false
	var spaced bool // noted already by the walk of the whole message
	_, ok := walkObject(v, 0, 2, &spaced, func(key []byte, i int) (int, bool) {
		e, ok := validValue(v, i, 3, &spaced)
		if !ok || bytes.IndexByte(key, '\\') >= 0 {
			return e, false
		}
		if string(key) != "id" {
			return e, true
		}
		if found {
			return e, false
		}
		found = true
		return e, decodeAny(v[i:e], dst)
	})
	return ok
}

// walkObject validates the object starting at b[i] == '{' at nesting depth
// depth, calling member with each member's name (the raw bytes between the
// quotes) and the index where its value starts; member validates the value
// and returns the index past it. walkObject returns the index past the
// closing brace.
func walkObject(b []byte, i, depth int, spaced *bool, member func(key []byte, v int) (int, bool)) (int, bool) {
	if depth >= maxNesting || i >= len(b) || b[i] != '{' {
		return i, false
	}
	i = noteSpace(b, i+1, spaced)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, false
		}
		ke := validStringEnd(b, i+1)
		if ke < 0 {
			return i, false
		}
		key := b[i+1 : ke]
		i = noteSpace(b, ke+1, spaced)
		if i >= len(b) || b[i] != ':' {
			return i, false
		}
		i = noteSpace(b, i+1, spaced)
		if i >= len(b) {
			return i, false
		}
		var ok bool
		if i, ok = member(key, i); !ok {
			return i, false
		}
		i = noteSpace(b, i, spaced)
		switch {
		case i < len(b) && b[i] == ',':
			i = noteSpace(b, i+1, spaced)
		case i < len(b) && b[i] == '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// Member numbers of wire, and the two answers of wireField and
// contextField that are not members.
const (
	fieldType = iota
	fieldMessageID
	fieldUserID
	fieldAnonymousID
	fieldPreviousID
	fieldGroupID
	fieldEvent
	fieldName
	fieldTimestamp
	fieldOriginalTimestamp
	fieldSentAt
	fieldReceivedAt
	fieldTraits
	fieldProperties
	fieldContext

	fieldUnknown = -1 // a member Loupe does not read
	fieldSlow    = -2 // a name only the slow path may judge
)

// lowerKey writes the member name key in lower case into buf and returns
// its length, or fieldSlow for a name with escapes or non-ASCII bytes (the
// fast path must not judge it), or fieldUnknown for one longer than buf,
// which is sized for the longest name the caller looks for.
func lowerKey(key []byte, buf []byte) int {
	for _, c := range key {
		if c >= utf8.RuneSelf || c == '\\' {
			return fieldSlow
		}
	}
	if len(key) > len(buf) {
		return fieldUnknown
	}
	for i, c := range key {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return len(key)
}

// wireField names the member of wire that key fills, matched without
// regard to ASCII case as the decoders match struct fields.
func wireField(key []byte) int {
	var buf [len("originaltimestamp")]byte
	n := lowerKey(key, buf[:])
	if n < 0 {
		return n
	}
	switch string(buf[:n]) {
	case "type":
		return fieldType
	case "messageid":
		return fieldMessageID
	case "userid":
		return fieldUserID
	case "anonymousid":
		return fieldAnonymousID
	case "previousid":
		return fieldPreviousID
	case "groupid":
		return fieldGroupID
	case "event":
		return fieldEvent
	case "name":
		return fieldName
	case "timestamp":
		return fieldTimestamp
	case "originaltimestamp":
		return fieldOriginalTimestamp
	case "sentat":
		return fieldSentAt
	case "receivedat":
		return fieldReceivedAt
	case "traits":
		return fieldTraits
	case "properties":
		return fieldProperties
	case "context":
		return fieldContext
	}
	return fieldUnknown
}

// contextField's numbers for the members of Context.
const (
	contextTraits = iota
	contextDevice
	contextIP
	contextGPC
	contextConsent
)

// contextField is wireField for the members of Context.
func contextField(key []byte) int {
	var buf [len("consent")]byte
	n := lowerKey(key, buf[:])
	if n < 0 {
		return n
	}
	switch string(buf[:n]) {
	case "traits":
		return contextTraits
	case "device":
		return contextDevice
	case "ip":
		return contextIP
	case "gpc":
		return contextGPC
	case "consent":
		return contextConsent
	}
	return fieldUnknown
}

// set fills member f of w from its valid JSON value v, reporting false
// when v has a type the member cannot take.
func (w *wire) set(f int, v []byte) bool {
	switch f {
	case fieldMessageID, fieldUserID, fieldAnonymousID, fieldPreviousID, fieldGroupID:
		id := [...]*flexID{&w.MessageID, &w.UserID, &w.AnonymousID, &w.PreviousID, &w.GroupID}[f-fieldMessageID]
		_ = id.UnmarshalJSON(v) // never fails; bad is checked by Parse
		return true
	case fieldTraits:
		switch v[0] {
		case 'n':
			return true
		case '{':
			m, _, ok := anyValue(v, 0)
			w.Traits, _ = m.(map[string]any)
			return ok
		}
		return false
	case fieldProperties:
		// Validated already; shared like Raw, not copied.
		w.Properties = rawValue(v)
		return true
	case fieldContext: // not an object (walkMessage walks objects)
		return v[0] == 'n'
	}
	if f == fieldType && v[0] == '"' {
		if t, ok := knownType(v[1 : len(v)-1]); ok {
			w.Type = t
			return true
		}
	}
	dst := [...]*string{fieldType: &w.Type, fieldEvent: &w.Event, fieldName: &w.Name, fieldTimestamp: &w.Timestamp,
		fieldOriginalTimestamp: &w.OriginalTimestamp, fieldSentAt: &w.SentAt, fieldReceivedAt: &w.ReceivedAt}[f]
	switch v[0] {
	case 'n':
		return true
	case '"':
		s, ok := plainString(v)
		*dst = s
		return ok
	}
	return false
}

// plainString returns the JSON string v (quotes included) when it holds
// no escapes to decode. Bytes that are not UTF-8 are kept, as goccy/go-json
// keeps them (FuzzParseFastMatchesSlow has a seed for it). A string with
// escapes sends the message down the slow path: SDKs rarely write them,
// and goccy's unescaping, handed one string on its own, does pointer
// arithmetic past the buffer that the race detector's checkptr rejects.
func plainString(v []byte) (string, bool) {
	s := v[1 : len(v)-1]
	if bytes.IndexByte(s, '\\') >= 0 {
		return "", false
	}
	return string(s), true
}

// decodeAny decodes the valid JSON value v into *dst as goccy/go-json
// decodes into an interface: objects as map[string]any, arrays as []any,
// numbers as float64. It reports false for a number float64 cannot hold
// or a string with escapes, which the slow path judges.
func decodeAny(v []byte, dst *any) bool {
	x, _, ok := anyValue(v, 0)
	if ok {
		*dst = x
	}
	return ok
}

// anyValue decodes the valid JSON value starting at b[i] and returns the
// index past it.
func anyValue(b []byte, i int) (any, int, bool) {
	switch b[i] {
	case '{':
		m := make(map[string]any)
		i = skipSpace(b, i+1)
		if b[i] == '}' {
			return m, i + 1, true
		}
		for {
			k, e, ok := stringValue(b, i)
			if !ok {
				return nil, i, false
			}
			i = skipSpace(b, e)
			var x any
			if x, i, ok = anyValue(b, skipSpace(b, i+1)); !ok {
				return nil, i, false
			}
			m[k] = x
			i = skipSpace(b, i)
			if b[i] == '}' {
				return m, i + 1, true
			}
			i = skipSpace(b, i+1)
		}
	case '[':
		a := []any{}
		i = skipSpace(b, i+1)
		if b[i] == ']' {
			return a, i + 1, true
		}
		for {
			x, e, ok := anyValue(b, i)
			if !ok {
				return nil, i, false
			}
			a = append(a, x)
			i = skipSpace(b, e)
			if b[i] == ']' {
				return a, i + 1, true
			}
			i = skipSpace(b, i+1)
		}
	case '"':
		return stringValue(b, i)
	case 't':
		return true, i + 4, true
	case 'f':
		return false, i + 5, true
	case 'n':
		return nil, i + 4, true
	}
	e := i + 1
	for e < len(b) && isNumberByte(b[e]) {
		e++
	}
	f, err := strconv.ParseFloat(string(b[i:e]), 64)
	return f, e, err == nil
}

// stringValue decodes the valid JSON string starting at b[i] and returns
// the index past it.
func stringValue(b []byte, i int) (string, int, bool) {
	e := stringEnd(b, i+1) + 1
	s, ok := plainString(b[i:e])
	return s, e, ok
}

var messageTypes = [...]string{TypeTrack, TypeIdentify, TypePage, TypeScreen, TypeGroup, TypeAlias}

// knownType returns the message type whose name s is, matched without
// regard to case as Parse matches it, without allocating a copy of s.
func knownType(s []byte) (string, bool) {
	for _, t := range messageTypes {
		if len(s) == len(t) && bytes.EqualFold(s, []byte(t)) {
			return t, true
		}
	}
	return "", false
}
