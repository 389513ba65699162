package engine

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/loupe-cdp/loupe/store"
)

// toSchema6LastSeen rewrites the last-seen index in tx as schema 6 stored
// it: a key per profile instead of blocks.
func toSchema6LastSeen(t *testing.T, tx *store.Txn) error {
	t.Helper()
	lt, err := readLastSeen(context.Background(), tx)
	if err != nil {
		return err
	}
	es := lt.entries()
	if len(es) == 0 {
		t.Fatal("setup: no last-seen entries to turn into keys")
	}
	var blocks [][]byte
	tx.Iterate([]byte{store.PrefixLastSeenBlock}, store.IterOptions{KeysOnly: true}, func(k, _ []byte) error {
		blocks = append(blocks, slices.Clone(k))
		return nil
	})
	for _, k := range blocks {
		if err := tx.Delete(k); err != nil {
			return err
		}
	}
	for _, en := range es {
		if err := tx.Set(store.LastSeenKey(en.last, en.pid), nil); err != nil {
			return err
		}
	}
	return tx.Delete(store.MetaKey("seq/lastseenblock"))
}

// lastSeenBlockEntries is every entry of every stored last-seen block,
// gone ones included.
func lastSeenBlockEntries(t *testing.T, e *Engine) map[uint64]int {
	t.Helper()
	n := map[uint64]int{}
	err := e.db.View(func(tx *store.Txn) error {
		return tx.Iterate([]byte{store.PrefixLastSeenBlock}, store.IterOptions{}, func(k, v []byte) error {
			return eachLastSeenEntry(k, v, func(pid uint64, _ int64, _ bool) error {
				n[pid]++
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// wantNewestFirst is the order the profile list must have: by the stored
// profiles' last seen, newest first, ties by the newer pid.
func wantNewestFirst(t *testing.T, e *Engine) []string {
	t.Helper()
	var es []lastSeenEntry
	for pid, p := range storedProfiles(t, e) {
		es = append(es, lastSeenEntry{pid, p.Last})
	}
	slices.SortFunc(es, newestFirstEntry)
	out := make([]string, len(es))
	for i, en := range es {
		out[i] = pidString(en.pid)
	}
	return out
}

func checkProfileList(t *testing.T, e *Engine) {
	t.Helper()
	ctx := context.Background()
	want := wantNewestFirst(t, e)
	ix, err := e.ProfileIndex(ctx, ProfileQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ix.IDs(0, ix.Len()); !slices.Equal(got, want) {
		t.Errorf("profile list:\n got %v\nwant %v", got, want)
	}
	recent, total, err := e.RecentProfiles(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if total != len(want) || !slices.Equal(recent, want[:min(5, len(want))]) {
		t.Errorf("recent %v of %d, want %v of %d", recent, total, want[:min(5, len(want))], len(want))
	}
}

func TestSchema6LastSeenIndexMigrates(t *testing.T) {
	dir, _ := olderDir(t, manyPeople(30), 6, func(*store.Txn) error { return nil })
	e := openDir(t, dir)
	if got := e.db.Schema(); got != store.SchemaVersion {
		t.Fatalf("schema after open: %d", got)
	}
	n, err := e.db.Count(context.Background(), []byte{store.PrefixLastSeen})
	if err != nil || n != 0 {
		t.Fatalf("%d schema 6 last-seen keys left (%v)", n, err)
	}
	checkLastSeenIndex(t, e)
	checkProfileList(t, e)
	// An ingest after it moves the people it sees to the top.
	ingestString(t, e, peopleComeBack(30))
	checkLastSeenIndex(t, e)
	checkProfileList(t, e)
}

// A profile merged away in a later unit than the one that first wrote its
// entry must leave the list.
func TestLastSeenIndexFollowsMergesAcrossUnits(t *testing.T) {
	e := openTest(t)
	e.unitEvents = 2
	at := ct0
	next := func() time.Time { at = at.Add(time.Minute); return at }
	in := msg("1", "track", next(), map[string]any{"anonymousId": "a1", "event": "Viewed"}) +
		msg("2", "track", next(), map[string]any{"anonymousId": "a2", "event": "Viewed"}) +
		msg("3", "track", next(), map[string]any{"userId": "u1", "event": "Viewed"}) +
		msg("4", "track", next(), map[string]any{"anonymousId": "a3", "event": "Viewed"}) +
		msg("5", "identify", next(), map[string]any{"userId": "u1", "anonymousId": "a1"}) +
		msg("6", "alias", next(), map[string]any{"userId": "u1", "previousId": "a2"})
	if st := ingestString(t, e, in); st.Merges != 2 {
		t.Fatalf("merges: %+v", st)
	}
	checkLastSeenIndex(t, e)
	checkProfileList(t, e)
	if ix, _ := e.ProfileIndex(context.Background(), ProfileQuery{}); ix.Len() != 2 {
		t.Fatalf("list of %d profiles: %v", ix.Len(), ix.IDs(0, ix.Len()))
	}
}

func TestLastSeenIndexAfterUnmerge(t *testing.T) {
	e := openTest(t)
	ingestString(t, e, `{"type":"identify","messageId":"1","userId":"u1","anonymousId":"kiosk","timestamp":"2026-10-01T00:00:00Z"}
{"type":"identify","messageId":"2","anonymousId":"kiosk","timestamp":"2026-10-03T00:00:00Z","traits":{"email":"two@example.com"}}
{"type":"track","messageId":"3","userId":"u1","event":"Viewed","timestamp":"2026-10-02T00:00:00Z"}
`)
	res, err := e.Unmerge(context.Background(), "anonymous_id:kiosk")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Profiles) < 2 {
		t.Fatalf("unmerge made only %v", res.Profiles)
	}
	checkLastSeenIndex(t, e)
	checkProfileList(t, e)
}

func TestErasureDropsLastSeenEntries(t *testing.T) {
	e := openTest(t)
	e.unitEvents = 2 // the merged-away profile has an entry before its merge
	at := ct0
	next := func() time.Time { at = at.Add(time.Minute); return at }
	in := msg("1", "track", next(), map[string]any{"anonymousId": "a1", "event": "Viewed"}) +
		msg("2", "track", next(), map[string]any{"userId": "u1", "event": "Viewed"}) +
		msg("3", "track", next(), map[string]any{"userId": "u2", "event": "Viewed"}) +
		msg("4", "identify", next(), map[string]any{"userId": "u1", "anonymousId": "a1"})
	ingestString(t, e, in)
	p := mustProfile(t, e, "user_id:u1")
	members := []uint64{}
	for _, id := range append([]string{p.ID}, p.MergedIDs...) {
		pid, _ := parsePID(id)
		members = append(members, pid)
	}
	if len(members) != 2 {
		t.Fatalf("setup: %s merged %v", p.ID, p.MergedIDs)
	}
	before := lastSeenBlockEntries(t, e)
	for _, pid := range members {
		if before[pid] == 0 {
			t.Fatalf("setup: %s has no last-seen entry", pidString(pid))
		}
	}
	if _, err := e.Erase(context.Background(), "user_id:u1", EraseOptions{}); err != nil {
		t.Fatal(err)
	}
	after := lastSeenBlockEntries(t, e)
	for _, pid := range members {
		if after[pid] != 0 {
			t.Errorf("%s still has %d last-seen entries", pidString(pid), after[pid])
		}
	}
	if u2 := mustProfile(t, e, "user_id:u2"); after[mustPID(t, u2.ID)] == 0 {
		t.Errorf("the other profile lost its entry")
	}
	checkLastSeenIndex(t, e)
	checkProfileList(t, e)
}

func countLastSeenBlocks(t *testing.T, e *Engine) int64 {
	t.Helper()
	n, err := e.db.Count(context.Background(), []byte{store.PrefixLastSeenBlock})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestLastSeenIndexCompacts(t *testing.T) {
	e := openTest(t)
	e.unitEvents = 3 // a block every three events: 40 for 30 people
	e.lastSeenCompactAt = 8
	ingestString(t, e, manyPeople(30))
	if n := countLastSeenBlocks(t, e); n != 1 {
		t.Fatalf("%d blocks after an ingest that wrote 40", n)
	}
	checkLastSeenIndex(t, e)
	checkProfileList(t, e)
	// A unit after the compaction gets a sequence number of its own: one
	// that overwrote the compacted block would drop every other profile.
	e.unitEvents = 10_000
	ingestString(t, e, msg("later", "track", ct0.Add(time.Hour), map[string]any{"userId": "u007", "event": "Back"}))
	if n := countLastSeenBlocks(t, e); n != 2 {
		t.Fatalf("%d blocks, want the compacted one and the new one", n)
	}
	checkLastSeenIndex(t, e)
	checkProfileList(t, e)
	// Sync sources and the collector write a block per batch.
	for i := range 9 {
		line := msg(fmt.Sprintf("batch-%d", i), "track", ct0.Add(2*time.Hour+time.Duration(i)*time.Minute), map[string]any{"userId": fmt.Sprintf("u%03d", i), "event": "Back"})
		if _, err := e.IngestBatch(context.Background(), []Message{{Data: []byte(line), Source: "test", Line: 1}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// The seventh made nine blocks: compacted to one, then two more.
	if n := countLastSeenBlocks(t, e); n != 3 {
		t.Fatalf("%d blocks after nine batches, want 3", n)
	}
	checkLastSeenIndex(t, e)
	checkProfileList(t, e)
}

func mustPID(t *testing.T, id string) uint64 {
	t.Helper()
	pid, ok := parsePID(id)
	if !ok {
		t.Fatalf("bad profile id %q", id)
	}
	return pid
}

func TestNewestIsTheHeadOfTheSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 5, 100, 5000} {
		lt := &lastSeenTable{last: make([]int64, size+1), live: make([]uint64, size/64+1)}
		var all []lastSeenEntry
		for pid := 1; pid <= size; pid++ {
			if r.IntN(4) == 0 {
				continue // a pid merged away
			}
			// Few distinct times, so that ties on the time are common.
			en := lastSeenEntry{pid: uint64(pid), last: int64(r.IntN(50))}
			lt.last[pid] = en.last
			lt.live[pid/64] |= 1 << (pid % 64)
			lt.n++
			all = append(all, en)
		}
		if got := lt.entries(); !slices.Equal(got, all) {
			t.Fatalf("size %d: entries %v, want %v", size, got, all)
		}
		slices.SortFunc(all, newestFirstEntry)
		for _, n := range []int{0, 1, 3, 50, size, size + 10} {
			if got, want := lt.newest(n), all[:min(n, len(all))]; !slices.Equal(got, want) {
				t.Fatalf("size %d, newest %d: got %v, want %v", size, n, got, want)
			}
		}
	}
}

// BenchmarkLastSeen measures the profile list's two reads of the
// last-seen index, the whole list in order and the first screen, over
// the demo: 20,000 people, or the data dir in LOUPE_BENCH_DATA (built by
// `loupe demo --no-tui --profiles 1000000 --data DIR`).
//
//	go test ./engine/ -run '^$' -bench LastSeen -benchmem
func BenchmarkLastSeen(b *testing.B) {
	ctx := context.Background()
	dir := os.Getenv("LOUPE_BENCH_DATA")
	if dir == "" {
		dir = b.TempDir()
	}
	e, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	if os.Getenv("LOUPE_BENCH_DATA") == "" {
		if _, err := e.IngestReader(ctx, bytes.NewReader(demoNDJSON(b, 20_000)), "demo", IngestOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	st, err := e.Stats(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Run(fmt.Sprintf("list/profiles=%d", st.Profiles), func(b *testing.B) {
		for b.Loop() {
			if ix, err := e.ProfileIndex(ctx, ProfileQuery{}); err != nil || int64(ix.Len()) != st.Profiles {
				b.Fatalf("%d profiles listed (%v), want %d", ix.Len(), err, st.Profiles)
			}
		}
	})
	b.Run(fmt.Sprintf("recent50/profiles=%d", st.Profiles), func(b *testing.B) {
		for b.Loop() {
			if ids, _, err := e.RecentProfiles(ctx, 50); err != nil || len(ids) != min(50, int(st.Profiles)) {
				b.Fatalf("%d recent (%v)", len(ids), err)
			}
		}
	})
}

// Compacted blocks hold at most so many entries: splitBlock cuts on entry
// boundaries and starts every block with the version byte.
func TestSplitBlock(t *testing.T) {
	block := []byte{9, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5}
	got := splitBlock(block, 2, 2)
	want := [][]byte{{9, 1, 1, 2, 2}, {9, 3, 3, 4, 4}, {9, 5, 5}}
	if !slices.EqualFunc(got, want, bytes.Equal) {
		t.Errorf("split %v into %v, want %v", block, got, want)
	}
	if got := splitBlock([]byte{9}, 2, 2); got != nil {
		t.Errorf("a block without entries split into %v", got)
	}
}
