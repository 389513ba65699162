package engine

import (
	"fmt"
	"slices"

	json "github.com/goccy/go-json"

	"github.com/loupe-cdp/loupe/engine/consent"
	"github.com/loupe-cdp/loupe/engine/identity"
	"github.com/loupe-cdp/loupe/store"
)

// Migrations from older on-disk layouts (store.SchemaVersion). Each step is
// written so that a run cut short resumes where it stopped: it commits the
// new form of some records in the transaction that deletes their old form.

// migrate brings a dir written by an older Loupe to the current layout
// (store.SchemaVersion).
func (e *Engine) migrate() error {
	from := e.db.Schema()
	if from == store.SchemaVersion {
		return nil
	}
	e.log.Info("migrating data dir", "dir", e.dir, "from_schema", from, "to_schema", store.SchemaVersion)
	if from < 2 {
		if err := e.migrateMessages(); err != nil {
			return fmt.Errorf("open engine: %w", err)
		}
		if err := e.migrateConsentChain(); err != nil {
			return fmt.Errorf("open engine: %w", err)
		}
		if err := e.migrateLinks(); err != nil {
			return fmt.Errorf("open engine: %w", err)
		}
		// The index from a messageId to the consent records made from
		// it: unmerge now finds them by scanning the profile's records.
		if err := e.db.DropPrefix(store.MetaKey("consent/msg/")); err != nil {
			return fmt.Errorf("open engine: drop consent message index: %w", err)
		}
	}
	if from < 6 {
		if err := e.migrateIdentities(); err != nil {
			return fmt.Errorf("open engine: %w", err)
		}
	}
	if from < 7 {
		if err := e.migrateLastSeen(); err != nil {
			return fmt.Errorf("open engine: %w", err)
		}
	}
	// Schema 2 to 3 rewrites nothing: version 2 event values are still
	// read, and only new ones are compressed. Nor does 3 to 4: 'L' link
	// blocks are still read, and only new links ride in event values. Nor
	// does 4 to 5: consent records stored one per key are still read, and
	// so are profile records of codec version 2, each rewritten in version
	// 3 when its profile next changes. Nor does 6 to 7 rewrite consent
	// records: JSON ones are read as they are, new ones are binary.
	return e.db.SetSchemaCurrent()
}

// migrateChunk is how many old records a migration transaction replaces.
const migrateChunk = 10_000

// migrateChunks walks the keys under prefix a chunk at a time: read sees
// each key and value of the chunk in a read transaction, then write stores
// the chunk's new form and deletes its keys in one read-write transaction,
// so a migration cut short resumes after the last chunk written.
func (e *Engine) migrateChunks(prefix []byte, keysOnly bool, read func(t *store.Txn, k, v []byte) error, write func(t *store.Txn, keys [][]byte) error) error {
	var from []byte
	for {
		var keys [][]byte
		err := e.db.View(func(t *store.Txn) error {
			return t.Iterate(prefix, store.IterOptions{KeysOnly: keysOnly, Seek: from}, func(k, v []byte) error {
				keys = append(keys, slices.Clone(k))
				if err := read(t, k, v); err != nil {
					return err
				}
				if len(keys) == migrateChunk {
					return store.ErrStop
				}
				return nil
			})
		})
		if err != nil || len(keys) == 0 {
			return err
		}
		if err := e.db.Update(func(t *store.Txn) error { return write(t, keys) }); err != nil {
			return err
		}
		from = append(keys[len(keys)-1], 0)
	}
}

// nextMetaSeq increments and returns the stored counter seq/name, in t.
func nextMetaSeq(t *store.Txn, name string) (uint64, error) {
	seq, err := getUint64(t, store.MetaKey("seq/"+name))
	if err != nil {
		return 0, err
	}
	seq++
	return seq, t.Set(store.MetaKey("seq/"+name), putUint64(seq))
}

// migrateMessages turns schema 1's one key per messageId into digest
// blocks, one per chunk.
func (e *Engine) migrateMessages() error {
	noRead := func(*store.Txn, []byte, []byte) error { return nil }
	err := e.migrateChunks([]byte{store.PrefixMessageV1}, true, noRead, func(t *store.Txn, keys [][]byte) error {
		seq, err := nextMetaSeq(t, "msgblock")
		if err != nil {
			return err
		}
		block := make([]byte, 1, 1+len(keys)*len(msgDigest{}))
		block[0] = msgBlockVersion
		for _, k := range keys {
			d := digestMessage(string(k[1:]))
			block = append(block, d[:]...)
			if err := t.Delete(k); err != nil {
				return err
			}
		}
		return t.Set(store.MessageBlockKey(seq), block)
	})
	if err != nil {
		return fmt.Errorf("migrate message ids: %w", err)
	}
	return nil
}

// migrateIdentities moves schema 5's identity index, a key per
// identifier, into blocks (identindex.go), one sequence number per chunk.
func (e *Engine) migrateIdentities() error {
	secret, err := e.secret()
	if err != nil {
		return err
	}
	var owners identBlocks
	read := func(_ *store.Txn, k, v []byte) error {
		typ, value, err := store.ParseIdentKey(k[1:])
		if err != nil || len(v) != 8 {
			return nil // not an index entry: dropped with the rest
		}
		owners.add(identDigest(secret, identity.ID{Type: typ, Value: value}), store.Uint64(v, 0))
		return nil
	}
	err = e.migrateChunks([]byte{store.PrefixIdentity}, false, read, func(t *store.Txn, keys [][]byte) error {
		defer func() { owners = identBlocks{} }()
		for _, k := range keys {
			if err := t.Delete(k); err != nil {
				return err
			}
		}
		if owners.empty() {
			return nil
		}
		seq, err := nextMetaSeq(t, "identblock")
		if err != nil {
			return err
		}
		return owners.each(seq, t.Set)
	})
	if err != nil {
		return fmt.Errorf("migrate identity index: %w", err)
	}
	return nil
}

// migrateLastSeen moves schema 6's last-seen index, a key per profile,
// into blocks (lastseen.go), one per chunk.
func (e *Engine) migrateLastSeen() error {
	var block lastSeenBlock
	read := func(_ *store.Txn, k, _ []byte) error {
		if len(k) == 17 {
			block.seen(store.Uint64(k, 9), store.Time(k, 1))
		}
		return nil // anything else is not an index entry: dropped with the rest
	}
	err := e.migrateChunks([]byte{store.PrefixLastSeen}, true, read, func(t *store.Txn, keys [][]byte) error {
		defer func() { block = nil }()
		for _, k := range keys {
			if err := t.Delete(k); err != nil {
				return err
			}
		}
		if len(block) == 0 {
			return nil
		}
		seq, err := nextMetaSeq(t, "lastseenblock")
		if err != nil {
			return err
		}
		return t.Set(store.LastSeenBlockKey(seq), block)
	})
	if err != nil {
		return fmt.Errorf("migrate last-seen index: %w", err)
	}
	return nil
}

// migrateConsentChain turns schema 1's one key per global chain entry
// (64-byte values) into blocks of up to 10,000 consecutive entries, stored
// under the first entry's key. Blocks already written are recognised by
// their length and left alone.
func (e *Engine) migrateConsentChain() error {
	const chunk = 10_000
	var from []byte
	for {
		var first uint64
		var keys [][]byte
		var block []byte
		err := e.db.View(func(t *store.Txn) error {
			return t.Iterate([]byte{store.PrefixConsentChain}, store.IterOptions{Seek: from}, func(k, v []byte) error {
				if len(k) != 9 || len(v) != 64 {
					if len(keys) > 0 {
						return store.ErrStop // a block: this run of single entries ends
					}
					from = append(slices.Clone(k), 0)
					return nil
				}
				seq := store.Uint64(k, 1)
				if len(keys) > 0 && seq != first+uint64(len(keys)) {
					return store.ErrStop // a gap: verify will name it; don't paper over it
				}
				if len(keys) == 0 {
					first = seq
				}
				keys = append(keys, slices.Clone(k))
				var ce consent.ChainEntry
				copy(ce.Record[:], v[:32])
				copy(ce.Chain[:], v[32:])
				block = consent.AppendChainEntry(block, ce)
				if len(keys) == chunk {
					return store.ErrStop
				}
				return nil
			})
		})
		if err != nil {
			return fmt.Errorf("migrate consent chain: %w", err)
		}
		if len(keys) == 0 {
			return nil
		}
		err = e.db.Update(func(t *store.Txn) error {
			for _, k := range keys[1:] {
				if err := t.Delete(k); err != nil {
					return err
				}
			}
			return t.Set(keys[0], block)
		})
		if err != nil {
			return fmt.Errorf("migrate consent chain: %w", err)
		}
		from = append(keys[len(keys)-1], 0)
	}
}

// migrateLinks turns schema 1's one key per link, under its first
// identifier, into blocks under the pid that owns the identifiers now
// (links.go), one block per pid and chunk. A link whose identifier no
// profile owns any more cannot be placed and is dropped.
func (e *Engine) migrateLinks() error {
	blocks := map[uint64]*linkBlock{}
	read := func(t *store.Txn, k, v []byte) error {
		a, b, err := store.ParseLinkKeyV1(k)
		var r linkRec
		if err == nil {
			err = json.Unmarshal(v, &r)
		}
		if err != nil {
			return nil // a damaged link is dropped with its key
		}
		owner, err := t.Get(append([]byte{store.PrefixIdentity}, a...))
		if err != nil || len(owner) != 8 {
			return nil
		}
		pid := store.Uint64(owner, 0)
		if blocks[pid] == nil {
			blocks[pid] = &linkBlock{}
		}
		blocks[pid].add(a, b, r)
		return nil
	}
	write := func(t *store.Txn, keys [][]byte) error {
		defer clear(blocks)
		seq, err := nextMetaSeq(t, "linkblock")
		if err != nil {
			return err
		}
		for pid, lb := range blocks {
			if err := t.Set(store.LinkBlockKey(pid, seq), lb.value()); err != nil {
				return err
			}
		}
		for _, k := range keys {
			if err := t.Delete(k); err != nil {
				return err
			}
		}
		return nil
	}
	if err := e.migrateChunks([]byte{store.PrefixLinkV1}, false, read, write); err != nil {
		return fmt.Errorf("migrate links: %w", err)
	}
	return nil
}
