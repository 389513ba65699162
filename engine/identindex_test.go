package engine

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loupe-cdp/loupe/engine/identity"
	"github.com/loupe-cdp/loupe/engine/internal/digestmap"
	"github.com/loupe-cdp/loupe/store"
)

// storedIdent is one identifier and the pid that owns it.
type storedIdent struct {
	id  identity.ID
	pid uint64
}

// profileIdents lists every profile's identifiers, read through e.
func profileIdents(t *testing.T, e *Engine) []storedIdent {
	t.Helper()
	var out []storedIdent
	err := e.db.View(func(tx *store.Txn) error {
		return tx.Iterate([]byte{store.PrefixProfile}, store.IterOptions{KeysOnly: true}, func(k, _ []byte) error {
			p, err := e.loadProfile(tx, store.Uint64(k, 1))
			if err != nil {
				return err
			}
			for _, id := range p.IDs {
				out = append(out, storedIdent{identity.ID{Type: id.T, Value: id.V}, p.PID})
			}
			return nil
		})
	})
	if err != nil || len(out) == 0 {
		t.Fatalf("profile identifiers: %d, %v", len(out), err)
	}
	return out
}

// toSchema5Index rewrites the identity index as schema 5 and before
// stored it, a key per identifier ('i'), naming the owners in ids.
func toSchema5Index(t *testing.T, tx *store.Txn, ids []storedIdent) error {
	t.Helper()
	var blocks [][]byte
	tx.Iterate([]byte{store.PrefixIdentBlock}, store.IterOptions{KeysOnly: true}, func(k, _ []byte) error {
		blocks = append(blocks, slices.Clone(k))
		return nil
	})
	if len(blocks) == 0 {
		t.Fatal("setup: no identity blocks to turn into keys")
	}
	for _, k := range blocks {
		if err := tx.Delete(k); err != nil {
			return err
		}
	}
	for _, s := range ids {
		if err := tx.Set(store.IdentityKey(s.id.Type, s.id.Value), store.AppendUint64(nil, s.pid)); err != nil {
			return err
		}
	}
	return tx.Delete(store.MetaKey("seq/identblock"))
}

// olderDir ingests in into a new dir and rewrites it, through the store
// alone, as an older Loupe would have left it: the identity index as
// schema 5 stored it (for v below 6), the last-seen index as schema 6
// stored it (for v below 7), then whatever rewrite does, and schema
// version v. It returns the dir and its profiles' identifiers.
func olderDir(t *testing.T, in string, v uint32, rewrite func(tx *store.Txn) error) (string, []storedIdent) {
	t.Helper()
	dir := t.TempDir()
	e := openDir(t, dir)
	ingestString(t, e, in)
	ids := profileIdents(t, e)
	e.Close()
	db, err := store.Open(store.BadgerDir(dir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *store.Txn) error {
		if v < 6 {
			if err := toSchema5Index(t, tx, ids); err != nil {
				return err
			}
		}
		if v < 7 {
			if err := toSchema6LastSeen(t, tx); err != nil {
				return err
			}
		}
		if err := rewrite(tx); err != nil {
			return err
		}
		return tx.Set(store.MetaKey("schema"), binary.BigEndian.AppendUint32(nil, v))
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir, ids
}

func TestSchema5IdentityIndexMigrates(t *testing.T) {
	dir, ids := olderDir(t, manyPeople(30), 5, func(*store.Txn) error { return nil })
	e := openDir(t, dir)
	if got := e.db.Schema(); got != store.SchemaVersion {
		t.Fatalf("schema after open: %d", got)
	}
	if ok, _ := hasKey(e, store.IdentityKey(ids[0].id.Type, ids[0].id.Value)); ok {
		t.Error("schema 5 identity keys left")
	}
	for _, s := range ids {
		if p := mustProfile(t, e, s.id.String()); p.ID != pidString(s.pid) {
			t.Errorf("%s resolves to %s after migration, want %s", s.id, p.ID, pidString(s.pid))
		}
	}
	// The ingest after it finds every identifier where it was.
	before, _ := e.Stats(context.Background())
	if st := ingestString(t, e, peopleComeBack(30)); st.ProfilesCreated != 0 {
		t.Fatalf("new events of known people made profiles: %+v", st)
	}
	if after, _ := e.Stats(context.Background()); after.Profiles != before.Profiles {
		t.Fatalf("profiles %d, were %d", after.Profiles, before.Profiles)
	}
}

// peopleComeBack is new events of manyPeople(n)'s people, each under one
// identifier only, so that each must be found in the identity index.
func peopleComeBack(n int) string {
	var b strings.Builder
	for i := range n {
		at := ct0.Add(48*time.Hour + time.Duration(i)*time.Minute)
		uid := fmt.Sprintf("u%03d", i)
		b.WriteString(msg("back-a-"+uid, "track", at, map[string]any{"anonymousId": "a-" + uid, "event": "Back"}))
		b.WriteString(msg("back-u-"+uid, "track", at, map[string]any{"userId": uid, "event": "Back"}))
	}
	return b.String()
}

func TestIngestAfterUnmergeFollowsTheSplit(t *testing.T) {
	e := openTest(t)
	ingestString(t, e, `{"type":"identify","messageId":"1","userId":"u1","anonymousId":"kiosk","timestamp":"2026-10-01T00:00:00Z","traits":{"email":"one@example.com"}}
{"type":"identify","messageId":"2","anonymousId":"kiosk","timestamp":"2026-10-03T00:00:00Z","traits":{"email":"two@example.com"}}
`)
	if _, err := e.Unmerge(context.Background(), "anonymous_id:kiosk"); err != nil {
		t.Fatal(err)
	}
	two := mustProfile(t, e, "email:two@example.com")
	u1 := mustProfile(t, e, "user_id:u1")
	if two.ID == u1.ID {
		t.Fatal("setup: unmerge left two@ with u1")
	}
	// The writer's index is reloaded from the blocks, where the unmerge
	// wrote the new owners over the old entries.
	st := ingestString(t, e, `{"type":"track","messageId":"3","event":"Opened","timestamp":"2026-10-04T00:00:00Z","context":{"traits":{"email":"two@example.com"}},"anonymousId":"fresh"}
`)
	if st.ProfilesCreated != 0 || st.Merges != 0 {
		t.Fatalf("ingest after unmerge: %+v", st)
	}
	if got := mustProfile(t, e, "anonymous_id:fresh").ID; got != two.ID {
		t.Fatalf("event of two@ went to %s, want %s (u1 is %s)", got, two.ID, u1.ID)
	}
}

func TestIdentityIndexIsBlocksOfDigests(t *testing.T) {
	if store.IdentPartitions != 1<<identPartBits {
		t.Fatalf("store has %d identity partitions, the engine picks among %d", store.IdentPartitions, 1<<identPartBits)
	}
	dir := t.TempDir()
	e := openDir(t, dir)
	e.unitEvents = 5 // several units, several blocks a partition
	ingestString(t, e, manyPeople(10))
	ids := profileIdents(t, e)
	var blocks, entries int
	err := e.db.View(func(tx *store.Txn) error {
		return tx.Iterate(nil, store.IterOptions{}, func(k, v []byte) error {
			for _, s := range ids {
				if strings.Contains(string(k), s.id.Value) {
					t.Errorf("key %q holds identifier %s in plain text", k, s.id)
				}
			}
			if k[0] != store.PrefixIdentBlock {
				return nil
			}
			blocks++
			return eachIdentEntry(k, v, func(d digestmap.Key, _ uint64) {
				entries++
				if identPart(d) != k[1] {
					t.Errorf("digest %x in partition %d's block %x", d, identPart(d), k)
				}
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if entries != len(ids) || blocks < 2 {
		t.Fatalf("%d entries in %d blocks for %d identifiers", entries, blocks, len(ids))
	}
	for _, s := range ids {
		if p := mustProfile(t, e, s.id.String()); p.ID != pidString(s.pid) {
			t.Errorf("%s resolves to %s, want %s", s.id, p.ID, pidString(s.pid))
		}
	}
}

// identBlockStats counts the identity index's blocks and entries.
func identBlockStats(t *testing.T, e *Engine) (blocks, entries int) {
	t.Helper()
	err := e.db.View(func(tx *store.Txn) error {
		return tx.Iterate([]byte{store.PrefixIdentBlock}, store.IterOptions{}, func(k, v []byte) error {
			blocks++
			return eachIdentEntry(k, v, func(digestmap.Key, uint64) { entries++ })
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return blocks, entries
}

func checkIdentsResolve(t *testing.T, e *Engine, ids []storedIdent) {
	t.Helper()
	for _, s := range ids {
		if p := mustProfile(t, e, s.id.String()); p.ID != pidString(s.pid) {
			t.Errorf("%s resolves to %s, want %s", s.id, p.ID, pidString(s.pid))
		}
	}
}

// partitionBlocks counts each identity partition's blocks.
func partitionBlocks(t *testing.T, e *Engine) []int {
	t.Helper()
	counts := make([]int, store.IdentPartitions)
	err := e.db.View(func(tx *store.Txn) error {
		return tx.Iterate([]byte{store.PrefixIdentBlock}, store.IterOptions{KeysOnly: true}, func(k, _ []byte) error {
			counts[k[1]]++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

func TestIdentityIndexCompacts(t *testing.T) {
	dir := t.TempDir()
	e := openDir(t, dir)
	e.unitEvents = 2 // a block in most partitions a unit touches
	ingestString(t, e, manyPeople(30))
	ids := profileIdents(t, e)
	before := partitionBlocks(t, e)
	over := 0
	for _, n := range before {
		if n > 1 {
			over++
		}
	}
	if over <= identCompactPerIngest {
		t.Fatalf("setup: %d partitions of several blocks: %v", over, before)
	}
	// An ingest that attaches no identifier compacts the fullest
	// partitions, no more than identCompactPerIngest of them.
	e.identCompactAt = 1
	ingestString(t, e, msg("again", "track", ct0.Add(time.Hour), map[string]any{"userId": "u001", "event": "Back"}))
	after := partitionBlocks(t, e)
	compacted := 0
	for part, n := range after {
		switch {
		case n == before[part]:
		case n == 1:
			compacted++
			for other, m := range before {
				if after[other] > 1 && m > before[part] {
					t.Errorf("partition %d (%d blocks) compacted before %d (%d)", part, before[part], other, m)
				}
			}
		default:
			t.Errorf("partition %d: %d blocks, had %d", part, n, before[part])
		}
	}
	if compacted != identCompactPerIngest {
		t.Errorf("%d partitions compacted, want %d: %v -> %v", compacted, identCompactPerIngest, before, after)
	}
	if _, entries := identBlockStats(t, e); entries != len(ids) {
		t.Errorf("%d entries for %d identifiers", entries, len(ids))
	}
	checkIdentsResolve(t, e, ids)
	// A unit after a compaction gets sequence numbers of its own: one that
	// overwrote a compacted block would lose its identifiers.
	if err := e.CompactIndexes(context.Background()); err != nil {
		t.Fatal(err)
	}
	for part, n := range partitionBlocks(t, e) {
		if n > 1 {
			t.Errorf("partition %d: %d blocks after CompactIndexes", part, n)
		}
	}
	for i := range 8 {
		uid := fmt.Sprintf("new-%d", i)
		ingestString(t, e, msg(uid, "identify", ct0.Add(time.Hour), map[string]any{"userId": uid, "anonymousId": "a-" + uid, "traits": map[string]any{"email": uid + "@example.com"}}))
	}
	ids = profileIdents(t, e)
	checkIdentsResolve(t, e, ids)
	// Reopened, the writer loads the compacted blocks: the same people
	// come back to the same profiles, and an unmerge still overrides.
	e.Close()
	e = openDir(t, dir)
	if st := ingestString(t, e, peopleComeBack(30)); st.ProfilesCreated != 0 {
		t.Fatalf("people seen before made new profiles: %+v", st)
	}
	if _, err := e.Unmerge(context.Background(), "anonymous_id:a-u003"); err != nil {
		t.Fatal(err)
	}
	if a, u := mustProfile(t, e, "anonymous_id:a-u003"), mustProfile(t, e, "user_id:u003"); a.ID == u.ID {
		t.Errorf("after unmerge a-u003 still resolves to %s with u003", a.ID)
	}
}

func TestGCCompactsTheIndexes(t *testing.T) {
	dir := t.TempDir()
	e := openDir(t, dir)
	e.unitEvents = 2
	ingestString(t, e, manyPeople(30))
	ids := profileIdents(t, e)
	if blocks, _ := identBlockStats(t, e); blocks <= store.IdentPartitions {
		t.Fatalf("setup: only %d identity blocks", blocks)
	}
	e.Close()
	if _, err := GC(context.Background(), dir, Options{}); err != nil {
		t.Fatal(err)
	}
	e = openDir(t, dir)
	if blocks, entries := identBlockStats(t, e); blocks > store.IdentPartitions || entries != len(ids) {
		t.Errorf("after gc: %d entries in %d identity blocks for %d identifiers", entries, blocks, len(ids))
	}
	if n := countLastSeenBlocks(t, e); n != 1 {
		t.Errorf("after gc: %d last-seen blocks", n)
	}
	checkIdentsResolve(t, e, ids)
	checkLastSeenIndex(t, e)
	checkProfileList(t, e)
}

// BenchmarkIdentDigest: the identity index digest the parse workers
// compute for every identifier of every event, against the HMAC that
// suppression entries use (compliance.identHash).
func BenchmarkIdentDigest(b *testing.B) {
	secret := make([]byte, 32)
	id := identity.ID{Type: "anonymous_id", Value: "5f0c7a8e-3c1b-4a55-9a4e-1e2f3a4b5c6d"}
	b.Run("sha256", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			identDigest(secret, id)
		}
	})
	b.Run("hmac", func(b *testing.B) {
		c := &compliance{mac: hmac.New(sha256.New, secret)}
		b.ReportAllocs()
		for b.Loop() {
			c.identHash(id.Type, id.Value)
		}
	})
}
