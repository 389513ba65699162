package engine

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/loupe-cdp/loupe/engine/segment"
)

// Stored event layout (value of an 'e' key), version 1:
//
//	0x01 | uvarint len | type | uvarint len | name | uvarint len | messageId | raw JSON
//
// The key already holds the owning pid, the time and the sequence number.
const eventCodecVersion = 1

var errBadEvent = errors.New("malformed stored event")

func encodeEvent(buf []byte, ev *segment.Event) []byte {
	name := ev.Event
	if ev.Type != "track" {
		name = ev.Name
	}
	buf = append(buf, eventCodecVersion)
	buf = appendString(buf, ev.Type)
	buf = appendString(buf, name)
	buf = appendString(buf, ev.MessageID)
	return append(buf, ev.Raw...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readString(b []byte) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return "", nil, errBadEvent
	}
	return string(b[k : k+int(n)]), b[k+int(n):], nil
}

func decodeEvent(pid uint64, unixNano int64, b []byte) (StoredEvent, error) {
	if len(b) < 1 || b[0] != eventCodecVersion {
		return StoredEvent{}, errBadEvent
	}
	b = b[1:]
	typ, b, err := readString(b)
	if err != nil {
		return StoredEvent{}, err
	}
	name, b, err := readString(b)
	if err != nil {
		return StoredEvent{}, err
	}
	msg, b, err := readString(b)
	if err != nil {
		return StoredEvent{}, err
	}
	return StoredEvent{
		ProfileID: pidString(pid),
		MessageID: msg,
		Type:      typ,
		Name:      name,
		Time:      time.Unix(0, unixNano).UTC(),
		Raw:       append([]byte(nil), b...),
	}, nil
}
