package segment

import "bytes"

// In-memory structural scanning of JSON that has not been validated yet.
// These helpers only find boundaries; Parse does the real validation, so
// they must merely never panic and never loop forever on any input.

// skipValue returns the index just past the JSON value starting at b[i]
// (b[i] is not white space), or -1 when the value is unterminated.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		end := stringEnd(b, i+1)
		if end < 0 {
			return -1
		}
		return end + 1
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end := stringEnd(b, i+1)
				if end < 0 {
					return -1
				}
				i = end
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	default:
		for ; i < len(b); i++ {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return i
			}
		}
		return i
	}
}

// member is one "key": value pair of an object, as byte ranges.
type member struct {
	key        []byte // raw key bytes between the quotes (escapes not decoded)
	start, end int    // value range in the object
}

// members lists the members of the object starting at obj[0] == '{'. ok is
// false when the object is structurally broken; close is the index of its
// closing brace.
func members(obj []byte) (ms []member, close int, ok bool) {
	close, ok = eachMember(obj, func(m member) { ms = append(ms, m) })
	if !ok {
		return nil, 0, false
	}
	return ms, close, true
}

// eachMember calls fn with each member of the object starting at
// obj[0] == '{', in order, as members lists them, without a list.
func eachMember(obj []byte, fn func(member)) (close int, ok bool) {
	if len(obj) == 0 || obj[0] != '{' {
		return 0, false
	}
	i := skipSpace(obj, 1)
	if i < len(obj) && obj[i] == '}' {
		return i, true
	}
	for i < len(obj) {
		if obj[i] != '"' {
			return 0, false
		}
		ke := skipValue(obj, i)
		if ke < 0 {
			return 0, false
		}
		key := obj[i+1 : ke-1]
		i = skipSpace(obj, ke)
		if i >= len(obj) || obj[i] != ':' {
			return 0, false
		}
		vs := skipSpace(obj, i+1)
		ve := skipValue(obj, vs)
		if ve < 0 || ve == vs {
			return 0, false
		}
		fn(member{key: key, start: vs, end: ve})
		i = skipSpace(obj, ve)
		if i >= len(obj) {
			return 0, false
		}
		switch obj[i] {
		case ',':
			i = skipSpace(obj, i+1)
		case '}':
			return i, true
		default:
			return 0, false
		}
	}
	return 0, false
}

// elements lists the [start, end) ranges of the elements of the array
// starting at arr[0] == '['.
func elements(arr []byte) (spans [][2]int, ok bool) {
	if len(arr) == 0 || arr[0] != '[' {
		return nil, false
	}
	i := skipSpace(arr, 1)
	if i < len(arr) && arr[i] == ']' {
		return nil, true
	}
	for i < len(arr) {
		e := skipValue(arr, i)
		if e < 0 || e == i {
			return nil, false
		}
		spans = append(spans, [2]int{i, e})
		i = skipSpace(arr, e)
		if i >= len(arr) {
			return nil, false
		}
		switch arr[i] {
		case ',':
			i = skipSpace(arr, i+1)
		case ']':
			return spans, true
		default:
			return nil, false
		}
	}
	return nil, false
}

func findMember(ms []member, key string) (member, bool) {
	for _, m := range ms {
		if string(m.key) == key {
			return m, true
		}
	}
	return member{}, false
}

// envelope is a batch envelope: {"batch": [...], "context": {...}, "sentAt": ...}.
type envelope struct {
	elems   [][2]int // element ranges in the envelope bytes
	context []byte   // the envelope's context object, or nil
	sentAt  []byte   // the envelope's sentAt value, or nil
}

// parseEnvelope reports whether obj is a batch envelope: an object whose
// "batch" member is an array.
func parseEnvelope(obj []byte) (envelope, bool) {
	ms, _, ok := members(obj)
	if !ok {
		return envelope{}, false
	}
	b, ok := findMember(ms, "batch")
	if !ok || obj[b.start] != '[' {
		return envelope{}, false
	}
	spans, ok := elements(obj[b.start:b.end])
	if !ok {
		return envelope{}, false
	}
	env := envelope{elems: spans}
	for i := range env.elems {
		env.elems[i][0] += b.start
		env.elems[i][1] += b.start
	}
	if c, ok := findMember(ms, "context"); ok && obj[c.start] == '{' {
		env.context = obj[c.start:c.end]
	}
	if s, ok := findMember(ms, "sentAt"); ok && obj[s.start] == '"' {
		env.sentAt = obj[s.start:s.end]
	}
	return env, true
}

// appendMerged appends msg with the envelope's defaults applied, following
// Segment's batch semantics: every top-level member of the envelope's
// context that the message's context lacks is added to it (a shallow
// merge: the message's own members win), and the envelope's sentAt is
// added when the message has none. Members are added at the end of the
// objects; everything else is copied byte for byte. A message that is not a
// well-formed object is copied unchanged (Parse will reject it).
func appendMerged(dst, msg, ctx, sentAt []byte) []byte {
	ms, closeIdx, ok := members(msg)
	if !ok || (ctx == nil && sentAt == nil) {
		return append(dst, msg...)
	}
	var top []byte // members to add to the message
	if s, has := findMember(ms, "sentAt"); sentAt != nil && (!has || isNull(msg[s.start:s.end])) {
		top = appendMember(top, "sentAt", sentAt)
	}
	cm, hasCtx := findMember(ms, "context")
	var ctxMs []member
	ctxClose := -1
	if ctx != nil {
		switch {
		case !hasCtx || isNull(msg[cm.start:cm.end]):
			top = appendMember(top, "context", ctx)
		case msg[cm.start] == '{':
			if ctxMs, ctxClose, ok = members(msg[cm.start:cm.end]); !ok {
				ctxClose = -1
			}
		}
	}
	var inner []byte // members to add to the message's context
	if ctxClose >= 0 {
		envMs, _, _ := members(ctx)
		for _, m := range envMs {
			if _, has := findMember(ctxMs, string(m.key)); !has {
				inner = appendRawMember(inner, ctx, m)
			}
		}
	}
	if len(inner) > 0 {
		at := cm.start + ctxClose
		dst = append(dst, msg[:at]...)
		if len(ctxMs) == 0 {
			inner = inner[1:] // drop the leading comma
		}
		dst = append(dst, inner...)
		dst = append(dst, msg[at:closeIdx]...)
	} else {
		dst = append(dst, msg[:closeIdx]...)
	}
	if len(top) > 0 {
		if len(ms) == 0 {
			top = top[1:]
		}
		dst = append(dst, top...)
	}
	return append(dst, msg[closeIdx:]...)
}

func appendMember(dst []byte, key string, val []byte) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	return append(dst, val...)
}

func appendRawMember(dst, obj []byte, m member) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, m.key...)
	dst = append(dst, '"', ':')
	return append(dst, obj[m.start:m.end]...)
}

func isNull(v []byte) bool { return bytes.Equal(v, []byte("null")) }
