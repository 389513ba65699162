package engine

import (
	"fmt"
	"slices"

	json "github.com/goccy/go-json"

	"github.com/loupe-cdp/loupe/engine/consent"
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
	return e.db.SetSchemaCurrent()
}

// migrateMessages turns schema 1's one key per messageId into digest
// blocks. Each block is written in the transaction that deletes the keys it
// replaces, so an interrupted migration resumes where it stopped.
func (e *Engine) migrateMessages() error {
	const chunk = 10_000
	var from []byte
	for {
		var keys [][]byte
		err := e.db.View(func(t *store.Txn) error {
			return t.Iterate([]byte{store.PrefixMessageV1}, store.IterOptions{KeysOnly: true, Seek: from},
				func(k, _ []byte) error {
					keys = append(keys, slices.Clone(k))
					if len(keys) == chunk {
						return store.ErrStop
					}
					return nil
				})
		})
		if err != nil {
			return fmt.Errorf("migrate message ids: %w", err)
		}
		if len(keys) == 0 {
			return nil
		}
		err = e.db.Update(func(t *store.Txn) error {
			seq, err := getUint64(t, store.MetaKey("seq/msgblock"))
			if err != nil {
				return err
			}
			seq++
			block := make([]byte, 1, 1+len(keys)*len(msgDigest{}))
			block[0] = msgBlockVersion
			for _, k := range keys {
				d := digestMessage(string(k[1:]))
				block = append(block, d[:]...)
				if err := t.Delete(k); err != nil {
					return err
				}
			}
			if err := t.Set(store.MessageBlockKey(seq), block); err != nil {
				return err
			}
			return t.Set(store.MetaKey("seq/msgblock"), putUint64(seq))
		})
		if err != nil {
			return fmt.Errorf("migrate message ids: %w", err)
		}
		from = append(keys[len(keys)-1], 0)
	}
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
// (links.go): 10,000 links a transaction, each transaction writing one
// block per pid and deleting the keys it replaces. A link whose identifier
// no profile owns any more cannot be placed and is dropped.
func (e *Engine) migrateLinks() error {
	const chunk = 10_000
	var from []byte
	for {
		var keys [][]byte
		blocks := map[uint64]*linkBlock{}
		err := e.db.View(func(t *store.Txn) error {
			return t.Iterate([]byte{store.PrefixLinkV1}, store.IterOptions{Seek: from}, func(k, v []byte) error {
				keys = append(keys, slices.Clone(k))
				a, b, err := store.ParseLinkKeyV1(k)
				var r linkRec
				if err == nil {
					err = json.Unmarshal(v, &r)
				}
				if err == nil {
					owner, gerr := t.Get(append([]byte{store.PrefixIdentity}, a...))
					if gerr == nil && len(owner) == 8 {
						pid := store.Uint64(owner, 0)
						if blocks[pid] == nil {
							blocks[pid] = &linkBlock{}
						}
						blocks[pid].add(a, b, r)
					}
				}
				if len(keys) == chunk {
					return store.ErrStop
				}
				return nil
			})
		})
		if err != nil {
			return fmt.Errorf("migrate links: %w", err)
		}
		if len(keys) == 0 {
			return nil
		}
		err = e.db.Update(func(t *store.Txn) error {
			seq, err := getUint64(t, store.MetaKey("seq/linkblock"))
			if err != nil {
				return err
			}
			seq++
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
			return t.Set(store.MetaKey("seq/linkblock"), putUint64(seq))
		})
		if err != nil {
			return fmt.Errorf("migrate links: %w", err)
		}
		from = append(keys[len(keys)-1], 0)
	}
}
