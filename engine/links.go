package engine

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/loupe-cdp/loupe/store"
)

// Links. A link joins two identifiers of one profile and records the event
// (messageId) and time that joined them. An ingest unit writes the links it
// made for a profile as one block, and a profile's links are the blocks
// under its own and its merged-away pids: links are only ever read a
// profile at a time (why, unmerge, export, erasure), and one key per link
// was a fifth of the keys of a bulk ingest. Since schema 4 the block rides
// in the value of the unit's events of that profile (codec.go, version 4);
// schema 2 and 3 stored it under a key of its own ('L' pid seq), which
// unmerge still writes for the pids of the groups it makes (their events
// move, their links are regrouped) and every reader still reads.
//
// Block layout (value of an 'L' key, links of a version 4 event value),
// version 1:
//
//	0x01 | uvarint n | n × (uvarint len | a | uvarint len | b | uvarint len | messageId | varint time)
//
// where a and b are identifiers encoded with store.IdentKey.
const linkBlockVersion = 1

// linkRec is what a link records: the event and its time.
type linkRec struct {
	M string `json:"m"` // the JSON names are schema 1's (migrate.go)
	T int64  `json:"t"`
}

// linkBlock gathers links for one pid.
type linkBlock struct {
	n     int
	items []byte
}

// add appends the link a–b (identifiers encoded with store.IdentKey).
func (lb *linkBlock) add(a, b []byte, r linkRec) {
	lb.items = appendString(lb.items, a)
	lb.items = appendString(lb.items, b)
	lb.items = appendString(lb.items, r.M)
	lb.items = binary.AppendVarint(lb.items, r.T)
	lb.n++
}

// value is the block's stored form.
func (lb *linkBlock) value() []byte { return lb.appendTo(make([]byte, 0, lb.size())) }

// size is the length of the block's stored form.
func (lb *linkBlock) size() int {
	var n [binary.MaxVarintLen64]byte
	return 1 + binary.PutUvarint(n[:], uint64(lb.n)) + len(lb.items)
}

// appendTo appends the block's stored form to b.
func (lb *linkBlock) appendTo(b []byte) []byte {
	b = append(b, linkBlockVersion)
	b = binary.AppendUvarint(b, uint64(lb.n))
	return append(b, lb.items...)
}

var errBadLinks = errors.New("malformed link block")

// forEachLink calls fn with each link of a stored block. The slices are
// only valid during the call.
func forEachLink(v []byte, fn func(a, b []byte, r linkRec) error) error {
	if len(v) == 0 || v[0] != linkBlockVersion {
		return errBadLinks
	}
	n, k := binary.Uvarint(v[1:])
	if k <= 0 {
		return errBadLinks
	}
	rest := v[1+k:]
	for range n {
		var f [3][]byte // a, b, messageId
		for i := range f {
			var ok bool
			if f[i], rest, ok = readField(rest); !ok {
				return errBadLinks
			}
		}
		t, k := binary.Varint(rest)
		if k <= 0 {
			return errBadLinks
		}
		rest = rest[k:]
		if err := fn(f[0], f[1], linkRec{M: string(f[2]), T: t}); err != nil {
			return err
		}
	}
	if len(rest) != 0 {
		return errBadLinks
	}
	return nil
}

// profileLinks calls fn with every link stored under pids (a profile's own
// and merged-away pids) and the key of its block: an 'L' key, or the 'e'
// key of the events that carry it.
func profileLinks(t *store.Txn, pids []uint64, fn func(key, a, b []byte, r linkRec) error) error {
	each := eachLink(fn)
	if err := linkBlocks(t, pids, each); err != nil {
		return err
	}
	for _, p := range pids {
		err := t.Iterate(store.EventPrefix(p), store.IterOptions{}, func(k, v []byte) error {
			links, _, err := splitLinks(v)
			if err != nil {
				return fmt.Errorf("events %x: %w", k, err)
			}
			if links == nil {
				return nil
			}
			return each(k, links)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// linkBlocks calls fn with each 'L' block stored under pids and its key.
func linkBlocks(t *store.Txn, pids []uint64, fn func(key, block []byte) error) error {
	for _, p := range pids {
		if err := t.Iterate(store.PIDKey(store.PrefixLinks, p), store.IterOptions{}, fn); err != nil {
			return err
		}
	}
	return nil
}

// eachLink turns fn, called per link, into a function called per block
// (its key and stored form).
func eachLink(fn func(key, a, b []byte, r linkRec) error) func(key, block []byte) error {
	return func(k, block []byte) error {
		if err := forEachLink(block, func(a, b []byte, r linkRec) error { return fn(k, a, b, r) }); err != nil {
			return fmt.Errorf("links %x: %w", k, err)
		}
		return nil
	}
}
