package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/loupe-cdp/loupe/engine/segment"
	"github.com/loupe-cdp/loupe/store"
)

// Stored event values ('e' keys). A key is pid(8) time(8) seq(8); the
// value holds one event (version 1) or a batch of them (versions 2 to 4):
//
//	version 1: 0x01 | body                     the event of the key's time and seq
//	version 2: 0x02 | batch
//	version 3: 0x03 | S2 block of batch        (github.com/klauspost/compress/s2)
//	version 4: 0x04 | uvarint len | links | version 2 or 3 value
//	batch:     uvarint n | n × item            several events of one profile
//	item:      varint time | uvarint seq | uvarint len | body
//	body:      uvarint len | type | uvarint len | name | uvarint len | messageId | raw JSON
//	links:     a link block (links.go): the links these events made
//
// An ingest unit writes each profile's events as one batch value, keyed by
// the newest (time, seq) among them, so that every event in a value sorts
// at or before its key: a newest-first reader can stop at a key older than
// what it has (browse.go). One key per profile per unit instead of one per
// event took a fifth of the keys out of a bulk ingest. Batches are stored
// compressed (version 3) unless that saves less than an eighth: Segment
// JSON shrinks ~2.8x, which cut the 1M demo's value log from 9.3 to 5.6 GB
// (the rest is profile and consent records) and, with it, the bytes the
// commit path copies, checksums and faults in (S2 encodes ~1.2 GB/s and
// decodes ~5 GB/s a core here). Version 4 carries, in front of the
// events, the links they made (schema 4): a link is always made by an event
// of the profile it is stored under, so the unit's link block of a profile
// rides in the value of its events instead of being a key of its own ('L'),
// 1.4M keys fewer in the 1M demo. The links stay uncompressed so that
// reading them (why, unmerge) does not decode the events. Version 1 is what
// schema 1 wrote and version 2 schema 2; both are still read.
const (
	eventCodecV1      = 1
	eventCodecBatch   = 2
	eventCodecBatchS2 = 3
	eventCodecLinked  = 4
)

var errBadEvent = errors.New("malformed stored event")

// eventHeader is the start of ev's stored body, before the raw JSON:
// type, name and messageId.
func eventHeader(ev *segment.Event) []byte {
	name := ev.Event
	if ev.Type != "track" {
		name = ev.Name
	}
	b := make([]byte, 0, 3+len(ev.Type)+len(name)+len(ev.MessageID))
	b = appendString(b, ev.Type)
	b = appendString(b, name)
	return appendString(b, ev.MessageID)
}

// eventBatch gathers one profile's events in an ingest unit.
type eventBatch struct {
	items []batchItem
	top   struct { // newest (time, seq): the key
		t   int64
		seq uint64
	}
}

type batchItem struct {
	t    int64
	seq  uint64
	head []byte // the body is head followed by raw
	raw  []byte
}

// add appends an event (at time t, sequence number seq) whose stored body
// is head followed by raw. The batch keeps both slices until value is
// called, so an event's raw JSON is copied once, into the value.
func (b *eventBatch) add(t int64, seq uint64, head, raw []byte) {
	if len(b.items) == 0 || t > b.top.t || t == b.top.t && seq > b.top.seq {
		b.top.t, b.top.seq = t, seq
	}
	b.items = append(b.items, batchItem{t, seq, head, raw})
}

// key and value are the batch's stored form under profile pid.
func (b *eventBatch) key(pid uint64) []byte { return store.EventKey(pid, b.top.t, b.top.seq) }

// value is the batch's stored value, carrying links (nil for none) in front
// of the events. scratch, when not nil, holds buffers the caller reuses from
// one value to the next.
func (b *eventBatch) value(scratch *valueScratch, links *linkBlock) []byte {
	if scratch == nil {
		scratch = &valueScratch{}
	}
	n := binary.MaxVarintLen64
	for _, it := range b.items {
		n += 3*binary.MaxVarintLen64 + len(it.head) + len(it.raw)
	}
	p := slices.Grow(scratch.batch[:0], n)
	p = binary.AppendUvarint(p, uint64(len(b.items)))
	for _, it := range b.items {
		p = binary.AppendVarint(p, it.t)
		p = binary.AppendUvarint(p, it.seq)
		p = binary.AppendUvarint(p, uint64(len(it.head)+len(it.raw)))
		p = append(p, it.head...)
		p = append(p, it.raw...)
	}
	scratch.batch = p
	scratch.packed = s2.Encode(scratch.packed[:cap(scratch.packed)], p)
	version, events := byte(eventCodecBatch), p
	if len(scratch.packed) < len(p)-len(p)/8 {
		version, events = eventCodecBatchS2, scratch.packed
	}
	// Only the stored value is allocated, at its final size: Badger keeps
	// it until the commit, and the batch is ~2.8 times bigger.
	if links == nil {
		return append(append(make([]byte, 0, 1+len(events)), version), events...)
	}
	size := links.size()
	v := make([]byte, 0, 2+binary.MaxVarintLen64+size+len(events))
	v = append(v, eventCodecLinked)
	v = binary.AppendUvarint(v, uint64(size)) // appendString's form, without a copy of the block
	v = links.appendTo(v)
	v = append(v, version)
	return append(v, events...)
}

// splitLinks splits a version 4 value into its links and the version 2 or 3
// value of its events; other versions have no links and are returned as
// they are.
func splitLinks(v []byte) (links, events []byte, err error) {
	if len(v) == 0 || v[0] != eventCodecLinked {
		return nil, v, nil
	}
	links, events, ok := readField(v[1:])
	if !ok || len(events) == 0 || events[0] != eventCodecBatch && events[0] != eventCodecBatchS2 {
		return nil, nil, errBadEvent
	}
	return links, events, nil
}

// valueScratch is what eventBatch.value reuses between calls.
type valueScratch struct{ batch, packed []byte }

// forEachEvent calls fn with the time, sequence number and body of each
// event in a stored value (k its key), in stored order.
func forEachEvent(k, v []byte, fn func(ns int64, seq uint64, body []byte) error) error {
	_, kns, kseq, err := store.ParseEventKey(k)
	if err != nil {
		return err
	}
	if _, v, err = splitLinks(v); err != nil {
		return err
	}
	if len(v) == 0 {
		return errBadEvent
	}
	b := v[1:]
	switch v[0] {
	case eventCodecV1:
		return fn(kns, kseq, b)
	case eventCodecBatch:
	case eventCodecBatchS2:
		if b, err = s2.Decode(nil, b); err != nil {
			return fmt.Errorf("%w: %v", errBadEvent, err)
		}
	default:
		return errBadEvent
	}
	n, k1 := binary.Uvarint(b)
	if k1 <= 0 {
		return errBadEvent
	}
	b = b[k1:]
	for range n {
		t, k1 := binary.Varint(b)
		if k1 <= 0 {
			return errBadEvent
		}
		b = b[k1:]
		seq, k2 := binary.Uvarint(b)
		if k2 <= 0 {
			return errBadEvent
		}
		b = b[k2:]
		l, k3 := binary.Uvarint(b)
		if k3 <= 0 || uint64(len(b)-k3) < l {
			return errBadEvent
		}
		if err := fn(t, seq, b[k3:k3+int(l)]); err != nil {
			return err
		}
		b = b[k3+int(l):]
	}
	if len(b) != 0 {
		return errBadEvent
	}
	return nil
}

// appendString appends s with its uvarint length in front, the field form
// of stored events, links and profile records.
func appendString[S ~string | ~[]byte](b []byte, s S) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// readField splits the first field appendString wrote off b; ok is false
// when b is too short for it.
func readField(b []byte) (field, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}

func readString(b []byte) (string, []byte, error) {
	f, rest, ok := readField(b)
	if !ok {
		return "", nil, errBadEvent
	}
	return string(f), rest, nil
}

// decodeEvent decodes an event body (see forEachEvent).
func decodeEvent(pid uint64, unixNano int64, b []byte) (StoredEvent, error) {
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
