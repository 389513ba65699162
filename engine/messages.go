package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/loupe-cdp/loupe/engine/internal/digestmap"
	"github.com/loupe-cdp/loupe/store"
)

// Message dedupe. Every ingested messageId is remembered as a digest: the
// first 16 bytes of its SHA-256. Digests are stored in one block per ingest
// unit ('M' keys) and held in memory, all of them, for the writer: a
// duplicate check is a map lookup and costs the store nothing, where a key
// per event was one key in five of a bulk ingest. The set is a digestmap
// (engine/internal/digestmap), not a Go map: a lookup per event into
// millions of entries is one cache miss there against several. A 128-bit
// cryptographic digest makes a false duplicate (an event dropped for
// another's id) as likely as a SHA-256 collision: negligible, even for
// crafted ids.
//
// Block layout (value of an 'M' key): msgBlockVersion, then the digests,
// 16 bytes each, in the order the unit ingested them.

// msgDigest identifies a messageId in the dedupe set.
type msgDigest [16]byte

// key is d as a digestmap key: its two halves.
func (d msgDigest) key() digestmap.Key {
	return digestmap.Key{binary.LittleEndian.Uint64(d[:8]), binary.LittleEndian.Uint64(d[8:])}
}

// messageSet is the engine's set of stored messageId digests.
type messageSet = digestmap.Map[struct{}]

const msgBlockVersion = 1

// digestMessage is the dedupe digest of a messageId.
func digestMessage(id string) msgDigest {
	s := sha256.Sum256([]byte(id))
	return msgDigest(s[:16])
}

// messages returns the digests of every stored messageId, loading them
// on first use. Caller holds writeMu.
func (e *Engine) messages() (*messageSet, error) {
	if e.msgs != nil {
		return e.msgs, nil
	}
	e.statsMu.Lock()
	n := e.counters.Events
	e.statsMu.Unlock()
	set := &messageSet{}
	set.Grow(int(n))
	err := e.db.View(func(t *store.Txn) error {
		return t.Iterate([]byte{store.PrefixMessage}, store.IterOptions{}, func(k, v []byte) error {
			return forEachDigest(k, v, func(d msgDigest) { set.Put(d.key(), struct{}{}) })
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load message ids: %w", err)
	}
	e.msgs = set
	return set, nil
}

// forEachDigest calls fn with each digest of block (key k, value v).
func forEachDigest(k, v []byte, fn func(msgDigest)) error {
	if len(v) < 1 || v[0] != msgBlockVersion || (len(v)-1)%len(msgDigest{}) != 0 {
		return fmt.Errorf("message block %x: malformed (%d bytes)", k, len(v))
	}
	for b := v[1:]; len(b) > 0; b = b[len(msgDigest{}):] {
		fn(msgDigest(b))
	}
	return nil
}

// forgetMessages removes the digests of erased events from the stored
// blocks, so that the events count as new (and then as suppressed) if they
// are ingested again. Every block is read: an erasure is rare and a
// 1M-person store holds ~120 MB of them. The rewrites are committed in
// transactions of at most a few MB; each only removes digests, so an
// interrupted run is finished by the next. Caller holds writeMu.
func (e *Engine) forgetMessages(gone map[msgDigest]struct{}) error {
	if len(gone) == 0 {
		return nil
	}
	var out []kv // a block's new value, nil when none of it stays
	err := e.db.View(func(t *store.Txn) error {
		return t.Iterate([]byte{store.PrefixMessage}, store.IterOptions{}, func(k, v []byte) error {
			keep := []byte{msgBlockVersion}
			hit := false
			err := forEachDigest(k, v, func(d msgDigest) {
				if _, ok := gone[d]; ok {
					hit = true
					return
				}
				keep = append(keep, d[:]...)
			})
			if err != nil || !hit {
				return err
			}
			if len(keep) == 1 {
				keep = nil // the block held only erased ids
			}
			out = append(out, kv{slices.Clone(k), keep})
			return nil
		})
	})
	for len(out) > 0 && err == nil {
		err = e.db.Update(func(t *store.Txn) error {
			size := 0
			for len(out) > 0 && size < 4<<20 {
				r := out[0]
				if err := r.apply(t); err != nil {
					return err
				}
				size += len(r.v)
				out = out[1:]
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("forget message ids: %w", err)
	}
	if e.msgs != nil { // else not loaded yet
		for d := range gone {
			e.msgs.Delete(d.key())
		}
	}
	return nil
}
