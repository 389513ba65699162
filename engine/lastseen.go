package engine

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"

	"github.com/loupe-cdp/loupe/store"
)

// The last-seen index orders profiles by their latest activity, for the
// workbench's list. It is stored in blocks ('S' in store/keys.go): each
// ingest unit writes one block of (pid, last seen) entries for the
// profiles whose last seen it moved, and an entry marking each profile it
// merged away as gone. Later blocks, and later entries within a block,
// override earlier ones. A key per profile, its old key deleted whenever
// the profile's last seen moved, was 28% of the entries a bulk ingest
// committed, and Badger's cost is per entry. Readers load every block
// (about 16 bytes a profile) and sort. An ingest that leaves more than
// lastSeenCompactAt blocks rewrites the index as a few (compactLastSeen).

// lastSeenBlockVersion is the first byte of a last-seen block.
const lastSeenBlockVersion = 1

// lastSeenEntrySize is the size of one block entry: pid(8) lastSeen(8).
const lastSeenEntrySize = 16

// lastSeenGone is set in an entry's pid when the profile is gone (merged
// away): its last seen is then meaningless. No pid comes near it.
const lastSeenGone = 1 << 63

// lastSeenBlock collects the entries of one block.
type lastSeenBlock []byte

// seen records pid's last seen.
func (b *lastSeenBlock) seen(pid uint64, last int64) { b.append(pid, last) }

// gone records that pid no longer exists.
func (b *lastSeenBlock) gone(pid uint64) { b.append(pid|lastSeenGone, 0) }

func (b *lastSeenBlock) append(pid uint64, last int64) {
	if len(*b) == 0 {
		*b = append(*b, lastSeenBlockVersion)
	}
	*b = binary.BigEndian.AppendUint64(*b, pid)
	*b = binary.BigEndian.AppendUint64(*b, uint64(last))
}

// eachLastSeenEntry calls fn with every entry of the block stored under
// key k, in order; gone is true for a profile merged away.
func eachLastSeenEntry(k, v []byte, fn func(pid uint64, last int64, gone bool) error) error {
	if len(v) < 1 || v[0] != lastSeenBlockVersion || (len(v)-1)%lastSeenEntrySize != 0 {
		return fmt.Errorf("last-seen block %x: malformed (%d bytes)", k, len(v))
	}
	for b := v[1:]; len(b) > 0; b = b[lastSeenEntrySize:] {
		pid := binary.BigEndian.Uint64(b)
		if err := fn(pid&^lastSeenGone, int64(binary.BigEndian.Uint64(b[8:])), pid&lastSeenGone != 0); err != nil {
			return err
		}
	}
	return nil
}

// lastSeenEntry is a profile and its last seen.
type lastSeenEntry struct {
	pid  uint64
	last int64
}

// newestFirstEntry orders entries as the workbench lists profiles: the
// latest activity first, ties by the newer pid.
func newestFirstEntry(a, b lastSeenEntry) int {
	if c := cmp.Compare(b.last, a.last); c != 0 {
		return c
	}
	return cmp.Compare(b.pid, a.pid)
}

// lastSeenTable is the index as read: the current entry of each pid.
// Pids are dense (a counter), so entries are kept in slices indexed by
// pid rather than a map: 1.25M profiles are 11 MB.
type lastSeenTable struct {
	last []int64  // by pid
	live []uint64 // bit set by pid: the pid's current entry is not gone
	n    int      // live pids
}

// readLastSeen reads every block in t, in key (sequence) order.
func readLastSeen(ctx context.Context, t *store.Txn) (*lastSeenTable, error) {
	maxPID, err := getUint64(t, store.MetaKey("seq/pid"))
	if err != nil {
		return nil, err
	}
	lt := &lastSeenTable{last: make([]int64, maxPID+1), live: make([]uint64, maxPID/64+1)}
	err = t.Iterate([]byte{store.PrefixLastSeenBlock}, store.IterOptions{}, func(k, v []byte) error {
		err := eachLastSeenEntry(k, v, func(pid uint64, ns int64, gone bool) error {
			if pid > maxPID {
				return fmt.Errorf("last-seen block %x: %s is beyond the last pid %s", k, pidString(pid), pidString(maxPID))
			}
			word, bit := &lt.live[pid/64], uint64(1)<<(pid%64)
			switch {
			case gone && *word&bit != 0:
				*word &^= bit
				lt.n--
			case !gone && *word&bit == 0:
				*word |= bit
				lt.n++
			}
			lt.last[pid] = ns
			return nil
		})
		if err != nil {
			return err
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	return lt, nil
}

// each calls fn with every live entry, in pid order.
func (lt *lastSeenTable) each(fn func(lastSeenEntry)) {
	for w, word := range lt.live {
		for word != 0 {
			pid := uint64(w*64 + bits.TrailingZeros64(word))
			word &= word - 1
			fn(lastSeenEntry{pid, lt.last[pid]})
		}
	}
}

// entries returns every live entry, in pid order.
func (lt *lastSeenTable) entries() []lastSeenEntry {
	out := make([]lastSeenEntry, 0, lt.n)
	lt.each(func(en lastSeenEntry) { out = append(out, en) })
	return out
}

// newest returns the n newest entries (newestFirstEntry), in order.
func (lt *lastSeenTable) newest(n int) []lastSeenEntry {
	if n <= 0 {
		return nil
	}
	// Keep the newest seen so far, sorted; an entry older than the last
	// kept, the common case once the first few thousand are in, costs
	// one comparison.
	top := make([]lastSeenEntry, 0, n)
	lt.each(func(en lastSeenEntry) {
		if len(top) == n && newestFirstEntry(en, top[n-1]) >= 0 {
			return
		}
		i, _ := slices.BinarySearchFunc(top, en, newestFirstEntry)
		if len(top) < n {
			top = append(top, lastSeenEntry{})
		}
		copy(top[i+1:], top[i:len(top)-1])
		top[i] = en
	})
	return top
}

// lastSeenCompactAt is how many blocks the index may have before an
// ingest ends by compacting it. A bulk ingest writes a block per 10,000
// events (769 for the 1M demo); sync sources and the collector write one
// per batch, which would otherwise grow without bound and slow every read
// of the list.
const lastSeenCompactAt = 1024

// lastSeenCompactedEntries is how many entries a compacted block holds:
// 1 MB, well inside a transaction.
const lastSeenCompactedEntries = 1 << 16

// compactLastSeen rewrites the last-seen index as few blocks, without the
// entries that later ones override or that mark profiles gone, once it
// has more than at blocks (compactIndexes).
func (e *Engine) compactLastSeen(ctx context.Context, at int) error {
	prefix := []byte{store.PrefixLastSeenBlock}
	if e.lastSeenBlocks < 0 {
		n, err := e.db.Count(ctx, prefix)
		if err != nil {
			return err
		}
		e.lastSeenBlocks = int(n)
	}
	if e.lastSeenBlocks <= at {
		return nil
	}
	var lt *lastSeenTable
	var old [][]byte
	err := e.db.View(func(t *store.Txn) error {
		var err error
		if lt, err = readLastSeen(ctx, t); err != nil {
			return err
		}
		return t.Iterate(prefix, store.IterOptions{KeysOnly: true}, func(k, _ []byte) error {
			old = append(old, slices.Clone(k))
			return nil
		})
	})
	if err != nil {
		return err
	}
	var all lastSeenBlock
	lt.each(func(en lastSeenEntry) { all.seen(en.pid, en.last) })
	blocks := splitBlock(all, lastSeenEntrySize, lastSeenCompactedEntries)
	if err := e.replaceBlocks("lastseenblock", store.LastSeenBlockKey, blocks, old); err != nil {
		return err
	}
	e.lastSeenBlocks = len(blocks)
	return nil
}

// lastSeenRewrites returns the new value of every last-seen block that
// holds an entry of one of pids, without those entries; nil for a block
// left empty. Erasure commits them with the rest of the profile's keys.
func lastSeenRewrites(t *store.Txn, pids []uint64) ([]kv, error) {
	var out []kv
	err := t.Iterate([]byte{store.PrefixLastSeenBlock}, store.IterOptions{}, func(k, v []byte) error {
		var keep lastSeenBlock
		hit := false
		err := eachLastSeenEntry(k, v, func(pid uint64, last int64, gone bool) error {
			switch {
			case slices.Contains(pids, pid):
				hit = true
			case gone:
				keep.gone(pid)
			default:
				keep.seen(pid, last)
			}
			return nil
		})
		if err != nil || !hit {
			return err
		}
		out = append(out, kv{slices.Clone(k), keep})
		return nil
	})
	return out, err
}
