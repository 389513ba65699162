package engine

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/loupe-cdp/loupe/engine/identity"
	"github.com/loupe-cdp/loupe/engine/internal/digestmap"
	"github.com/loupe-cdp/loupe/store"
)

// The identity index maps each identifier to the profile that owns it.
// It is stored in blocks ('I' in store/keys.go): an ingest unit writes
// the identifiers it attaches as (digest, pid) entries, one block per
// partition it touches, and later blocks override earlier ones. A key per
// identifier was two fifths of the keys a bulk ingest wrote, and Badger's
// cost is per key (its memtable inserts in random order). The writer
// loads every block into Engine.idents; a single lookup reads the blocks
// of one partition (lookupIdent).

// identBlockVersion is the first byte of an identity block.
const identBlockVersion = 1

// identEntrySize is the size of one block entry: digest(16) pid(8).
const identEntrySize = 24

// identDigest is id's identity index digest: the first 128 bits of
// SHA-256 over the data dir's secret, the type, 0x00 and the value. The
// parse workers compute one for each identifier of every event, so it is
// a plain salted hash (two SHA-256 blocks for most identifiers, no
// allocation: 131 ns against 258 ns and four allocations for the HMAC
// that suppression entries are keyed by, compliance.identHash;
// BenchmarkIdentDigest). The secret keeps anyone without the dir
// from choosing identifiers whose digests collide, which would merge
// their profiles.
func identDigest(secret []byte, id identity.ID) digestmap.Key {
	var buf [128]byte
	b := append(buf[:0], secret...)
	b = append(b, id.Type...)
	b = append(b, 0)
	b = append(b, id.Value...)
	s := sha256.Sum256(b)
	return digestmap.Key{binary.BigEndian.Uint64(s[0:8]), binary.BigEndian.Uint64(s[8:16])}
}

// identPartBits is how many leading bits of a digest pick its partition:
// store.IdentPartitions is 1 << identPartBits.
const identPartBits = 6

// identPart is the partition of the identity index that holds k.
func identPart(k digestmap.Key) byte { return byte(k[0] >> (64 - identPartBits)) }

// appendIdentEntry appends the block entry (k, pid) to b.
func appendIdentEntry(b []byte, k digestmap.Key, pid uint64) []byte {
	b = binary.BigEndian.AppendUint64(b, k[0])
	b = binary.BigEndian.AppendUint64(b, k[1])
	return binary.BigEndian.AppendUint64(b, pid)
}

// eachIdentEntry calls fn with every entry of the identity block stored
// under key k.
func eachIdentEntry(k, v []byte, fn func(digestmap.Key, uint64)) error {
	if len(v) < 1 || v[0] != identBlockVersion || (len(v)-1)%identEntrySize != 0 {
		return fmt.Errorf("identity block %x: malformed (%d bytes)", k, len(v))
	}
	for b := v[1:]; len(b) > 0; b = b[identEntrySize:] {
		fn(digestmap.Key{binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])}, binary.BigEndian.Uint64(b[16:]))
	}
	return nil
}

// identBlocks collects identity index entries by partition, to be stored
// as blocks under one sequence number.
type identBlocks [store.IdentPartitions][]byte

func (ib *identBlocks) add(k digestmap.Key, pid uint64) {
	p := &ib[identPart(k)]
	if len(*p) == 0 {
		*p = append(*p, identBlockVersion)
	}
	*p = appendIdentEntry(*p, k, pid)
}

func (ib *identBlocks) empty() bool {
	for _, b := range ib {
		if len(b) > 0 {
			return false
		}
	}
	return true
}

// each calls fn with the key and value of every non-empty block, as
// stored under seq.
func (ib *identBlocks) each(seq uint64, fn func(k, v []byte) error) error {
	for part, b := range ib {
		if len(b) > 0 {
			if err := fn(store.IdentBlockKey(byte(part), seq), b); err != nil {
				return err
			}
		}
	}
	return nil
}

// secret returns the data dir's salt, created on first use. It never
// leaves the dir; identifier digests and hashes (identity index,
// suppression) and IP hashes are keyed with it.
func (e *Engine) secret() ([]byte, error) {
	e.secretOnce.Do(func() {
		e.secretErr = e.db.Update(func(t *store.Txn) error {
			v, err := t.Get(store.MetaKey("secret"))
			if err == nil && len(v) >= 16 {
				e.secretVal = v
				return nil
			}
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			s := make([]byte, 32)
			if _, err := rand.Read(s); err != nil {
				return err
			}
			e.secretVal = s
			return t.Set(store.MetaKey("secret"), s)
		})
		if e.secretErr != nil {
			e.secretErr = fmt.Errorf("data dir secret: %w", e.secretErr)
		}
	})
	return e.secretVal, e.secretErr
}

// identKey is id's identity index digest (identDigest).
func (e *Engine) identKey(id identity.ID) (digestmap.Key, error) {
	secret, err := e.secret()
	if err != nil {
		return digestmap.Key{}, err
	}
	return identDigest(secret, id), nil
}

// identIndex returns the in-memory identity index, loading every block
// on first use: each digest maps to the live owner of its identifier,
// the merged-away pids the blocks name resolved through the 'a' keys.
// Caller holds writeMu.
func (e *Engine) identIndex() (*digestmap.Map[uint64], error) {
	if e.idents != nil {
		return e.idents, nil
	}
	e.statsMu.Lock()
	n := 0
	for _, c := range e.counters.Idents {
		n += int(c)
	}
	e.statsMu.Unlock()
	m := &digestmap.Map[uint64]{}
	m.Grow(n)
	blocks := make([]int, store.IdentPartitions)
	err := e.db.View(func(t *store.Txn) error {
		merged := map[uint64]uint64{}
		err := t.Iterate([]byte{store.PrefixMerged}, store.IterOptions{}, func(k, v []byte) error {
			if len(k) == 9 && len(v) == 8 {
				merged[store.Uint64(k, 1)] = store.Uint64(v, 0)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return t.Iterate([]byte{store.PrefixIdentBlock}, store.IterOptions{}, func(k, v []byte) error {
			if len(k) > 1 && int(k[1]) < len(blocks) {
				blocks[k[1]]++
			}
			return eachIdentEntry(k, v, func(d digestmap.Key, pid uint64) {
				if live, ok := merged[pid]; ok {
					pid = live
				}
				m.Put(d, pid)
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load identity index: %w", err)
	}
	e.idents, e.identBlockCounts = m, blocks
	return m, nil
}

// lookupIdent returns the pid the identity index names for the digest k
// (possibly merged away; see livePID), reading the blocks of k's
// partition in t newest first: later blocks override earlier ones, so the
// first block that names k decides, and a lookup stops there instead of
// reading the whole partition (about 770 blocks after the 1M demo's bulk
// ingest, 2.6 s with the page cache dropped).
func lookupIdent(t *store.Txn, k digestmap.Key) (pid uint64, found bool, err error) {
	err = t.Iterate(store.IdentPartitionPrefix(identPart(k)), store.IterOptions{Reverse: true}, func(bk, v []byte) error {
		err := eachIdentEntry(bk, v, func(d digestmap.Key, p uint64) {
			if d == k {
				pid, found = p, true // a later entry of the block overrides
			}
		})
		if err == nil && found {
			return store.ErrStop
		}
		return err
	})
	return pid, found, err
}

// ownerOf is lookupIdent for an identifier.
func (e *Engine) ownerOf(t *store.Txn, id identity.ID) (pid uint64, found bool, err error) {
	k, err := e.identKey(id)
	if err != nil {
		return 0, false, err
	}
	return lookupIdent(t, k)
}

// identRewrites returns the new value of every identity block that holds
// one of the digests in gone, without their entries; nil for a block
// left empty. Erasure commits them with the rest of the profile's keys.
func identRewrites(t *store.Txn, gone map[digestmap.Key]struct{}) ([]kv, error) {
	parts := map[byte]bool{}
	for k := range gone {
		parts[identPart(k)] = true
	}
	var out []kv
	for part := range parts {
		err := t.Iterate(store.IdentPartitionPrefix(part), store.IterOptions{}, func(k, v []byte) error {
			keep := []byte{identBlockVersion}
			hit := false
			err := eachIdentEntry(k, v, func(d digestmap.Key, pid uint64) {
				if _, ok := gone[d]; ok {
					hit = true
					return
				}
				keep = appendIdentEntry(keep, d, pid)
			})
			if err != nil || !hit {
				return err
			}
			if len(keep) == 1 {
				keep = nil
			}
			out = append(out, kv{slices.Clone(k), keep})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// identCompactAt is how many blocks a partition of the identity index may
// have before an ingest compacts it. The bulk ingest of the 1M demo
// writes about 770 a partition; the collector and sync sources a block in
// most partitions per batch.
const identCompactAt = 1024

// identCompactPerIngest is how many partitions an ingest compacts at
// most: the collector's batches fill the partitions at the same pace, and
// compacting them all at once would hold one batch up for seconds in a
// large store (about 85 ms a partition over the 1M demo).
const identCompactPerIngest = 4

// identCompactedEntries is how many entries a compacted block holds at
// most: 1.5 MB, well inside a transaction.
const identCompactedEntries = 1 << 16

// countIdentBlocks counts each partition's blocks into e.identBlockCounts
// unless that is known.
func (e *Engine) countIdentBlocks(ctx context.Context) error {
	if e.identBlockCounts != nil {
		return nil
	}
	counts := make([]int, store.IdentPartitions)
	for part := range counts {
		n, err := e.db.Count(ctx, store.IdentPartitionPrefix(byte(part)))
		if err != nil {
			return err
		}
		counts[part] = int(n)
	}
	e.identBlockCounts = counts
	return nil
}

// compactIdentIndex rewrites up to limit partitions of the identity index
// that have more than at blocks, the fullest first, each as
// one block (a few past 65,536 identifiers) of the entries no later block
// overrides (compactIndexes).
func (e *Engine) compactIdentIndex(ctx context.Context, at, limit int) error {
	if err := e.countIdentBlocks(ctx); err != nil {
		return err
	}
	var parts []int
	for part, n := range e.identBlockCounts {
		if n > at {
			parts = append(parts, part)
		}
	}
	slices.SortFunc(parts, func(a, b int) int { return e.identBlockCounts[b] - e.identBlockCounts[a] })
	for _, part := range parts[:min(limit, len(parts))] {
		n, err := e.compactIdentPartition(ctx, byte(part))
		if err != nil {
			return err
		}
		e.identBlockCounts[part] = n
	}
	return nil
}

// compactIdentPartition rewrites one partition and returns how many
// blocks it has now. It reads the store, not Engine.idents, which
// resolves merged-away pids and may lag behind an erasure.
func (e *Engine) compactIdentPartition(ctx context.Context, part byte) (int, error) {
	owners := map[digestmap.Key]uint64{}
	var old [][]byte
	err := e.db.View(func(t *store.Txn) error {
		return t.Iterate(store.IdentPartitionPrefix(part), store.IterOptions{}, func(k, v []byte) error {
			old = append(old, slices.Clone(k))
			if err := eachIdentEntry(k, v, func(d digestmap.Key, pid uint64) { owners[d] = pid }); err != nil {
				return err
			}
			return ctx.Err()
		})
	})
	if err != nil {
		return 0, err
	}
	all := make([]byte, 1, 1+len(owners)*identEntrySize)
	all[0] = identBlockVersion
	for d, pid := range owners {
		all = appendIdentEntry(all, d, pid)
	}
	values := splitBlock(all, identEntrySize, identCompactedEntries)
	key := func(seq uint64) []byte { return store.IdentBlockKey(part, seq) }
	if err := e.replaceBlocks("identblock", key, values, old); err != nil {
		return 0, err
	}
	return len(values), nil
}
