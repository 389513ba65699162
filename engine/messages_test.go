package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	json "github.com/goccy/go-json"

	"github.com/loupe-cdp/loupe/store"
)

func TestDuplicatesAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	e := openDir(t, dir)
	e.unitEvents = 7 // many digest blocks
	in := manyPeople(20)
	if st := ingestString(t, e, in); st.Ingested != 80 {
		t.Fatalf("first ingest: %+v", st)
	}
	before, _ := e.Stats(context.Background())
	e.Close()

	e = openDir(t, dir)
	st := ingestString(t, e, in+msg("new-one", "track", ct0, map[string]any{"userId": "u000", "event": "X"}))
	if st.Duplicates != 80 || st.Ingested != 1 {
		t.Fatalf("re-ingest after reopen: %+v", st)
	}
	after, _ := e.Stats(context.Background())
	if after.Events != before.Events+1 || after.Profiles != before.Profiles {
		t.Fatalf("stats: %+v -> %+v", before, after)
	}
}

func TestSchema1Migrates(t *testing.T) {
	// "all": the dir as schema 1 wrote it. "cut short": the state a
	// migration interrupted between chunks leaves (some records already in
	// blocks, the rest still one key each); opening it again finishes.
	for _, cut := range []bool{false, true} {
		name := map[bool]string{false: "all", true: "cut short"}[cut]
		t.Run(name, func(t *testing.T) { testSchema1Migrates(t, cut) })
	}
}

func testSchema1Migrates(t *testing.T, cut bool) {
	// Rewrite the dir in schema 1's form: a key per messageId, per chain
	// entry, per link, per identifier; when cut, only every other
	// messageId and link block and the chain from its third entry on.
	in := manyPeople(5)
	dir, _ := olderDir(t, in, 1, func(tx *store.Txn) error {
		kept := []byte{msgBlockVersion}
		for i, line := range strings.Split(strings.TrimSpace(in), "\n") {
			id := line[strings.Index(line, `"messageId":"`)+13:]
			id = id[:strings.IndexByte(id, '"')]
			if cut && i%2 == 0 {
				d := digestMessage(id)
				kept = append(kept, d[:]...)
				continue
			}
			if err := tx.Set(append([]byte{store.PrefixMessageV1}, id...), make([]byte, 24)); err != nil {
				return err
			}
		}
		if cut {
			if err := tx.Set(store.MessageBlockKey(1), kept); err != nil {
				return err
			}
		} else {
			if err := tx.Delete(store.MessageBlockKey(1)); err != nil {
				return err
			}
			if err := tx.Delete(store.MetaKey("seq/msgblock")); err != nil {
				return err
			}
		}
		if err := tx.Set(append(store.MetaKey("consent/msg/"), "c-u000"...), store.AppendUint64(nil, 1)); err != nil {
			return err
		}
		// The consent chain as single 64-byte entries, one key each.
		block, err := tx.Get(store.ConsentChainKey(1))
		if err != nil {
			return err
		}
		from := 0
		if cut {
			from = 2
			if err := tx.Set(store.ConsentChainKey(1), block[:1+2*64]); err != nil {
				return err
			}
		}
		for i := from; 1+i*64 < len(block); i++ {
			if err := tx.Set(store.ConsentChainKey(uint64(i+1)), block[1+i*64:1+(i+1)*64]); err != nil {
				return err
			}
		}
		// Links as one key each, under their first identifier; when cut,
		// every other block is left as schema 2 and 3 wrote it, an 'L' key.
		// The blocks come out of the event values that carry them.
		var keys, events, blocks [][]byte
		tx.Iterate([]byte{store.PrefixEvent}, store.IterOptions{}, func(k, v []byte) error {
			if links, ev, err := splitLinks(v); err == nil && links != nil {
				keys, events, blocks = append(keys, slices.Clone(k)), append(events, slices.Clone(ev)), append(blocks, slices.Clone(links))
			}
			return nil
		})
		for i, k := range keys {
			if err := tx.Set(k, events[i]); err != nil {
				return err
			}
			if cut && i%2 == 0 {
				pid, _, _, _ := store.ParseEventKey(k)
				if err := tx.Set(store.LinkBlockKey(pid, uint64(i+1)), blocks[i]); err != nil {
					return err
				}
				continue
			}
			err := forEachLink(blocks[i], func(a, b []byte, r linkRec) error {
				v, _ := json.Marshal(r)
				return tx.Set(store.LinkKeyV1(a, b), v)
			})
			if err != nil {
				return err
			}
		}
		if len(blocks) < 2 {
			return errors.New("setup: too few link blocks to turn into schema 1 links")
		}
		return nil
	})
	e := openDir(t, dir)
	if got := e.db.Schema(); got != store.SchemaVersion {
		t.Fatalf("schema after open: %d", got)
	}
	var v1 int
	e.db.View(func(tx *store.Txn) error {
		return tx.Iterate([]byte{store.PrefixMessageV1}, store.IterOptions{KeysOnly: true}, func(_, _ []byte) error {
			v1++
			return nil
		})
	})
	if v1 != 0 {
		t.Errorf("%d schema 1 message keys left", v1)
	}
	if ok, _ := hasKey(e, append(store.MetaKey("consent/msg/"), "c-u000"...)); ok {
		t.Error("schema 1 consent message index left")
	}
	e.db.View(func(tx *store.Txn) error {
		return tx.Iterate([]byte{store.PrefixLinkV1}, store.IterOptions{KeysOnly: true}, func(k, _ []byte) error {
			t.Errorf("schema 1 link key %q left", k)
			return nil
		})
	})
	for i := range 5 {
		uid := fmt.Sprintf("u%03d", i)
		why, err := e.Why(context.Background(), "email:"+uid+"@example.com", "anonymous_id:a-"+uid)
		if err != nil || !why.Connected || len(why.Path) == 0 || why.Path[0].MessageID != "id-"+uid {
			t.Errorf("why after migration, %s: %+v %v", uid, why, err)
		}
	}
	if st := ingestString(t, e, in); st.Duplicates != 20 || st.Ingested != 0 {
		t.Fatalf("re-ingest after migration: %+v", st)
	}
	res, err := e.VerifyConsent(context.Background())
	if err != nil || !res.OK || res.Records != 5 {
		t.Fatalf("consent chain after migration: %+v %v", res, err)
	}
	var sizes []int
	e.db.View(func(tx *store.Txn) error {
		return tx.Iterate([]byte{store.PrefixConsentChain}, store.IterOptions{}, func(_, v []byte) error {
			sizes = append(sizes, (len(v)-1)/64)
			return nil
		})
	})
	want := []int{5} // the 5 entries in one block
	if cut {
		want = []int{2, 3} // the block written before the cut, and the rest
	}
	if !slices.Equal(sizes, want) {
		t.Errorf("chain blocks of %v entries after migration, want %v", sizes, want)
	}
}

func TestCancelledIngestLeavesEngineAsStored(t *testing.T) {
	// A cancelled ingest drops the unit it was building. The next ingest
	// through the same engine must see the store, not the dropped unit's
	// owners, profiles, consent chain heads or messageIds.
	dir := t.TempDir()
	e := openDir(t, dir)
	e.unitEvents = 100
	in := manyPeople(150) // 600 events, decoded in batches of 256
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	units := 0
	st, err := e.IngestReader(ctx, strings.NewReader(in), "test", IngestOptions{Progress: func(IngestProgress) {
		if units++; units == 3 {
			// Mid-batch: the writer finishes its batch of 256 (units up
			// to event 500 commit) and stops with events 501–512 in a
			// unit that never commits.
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ingest: %v (%+v)", err, st)
	}
	st, err = e.IngestReader(context.Background(), strings.NewReader(in), "test", IngestOptions{})
	if err != nil {
		t.Fatalf("ingest after cancel: %v", err)
	}
	if st.Duplicates != 500 || st.Ingested != 100 {
		t.Fatalf("ingest after cancel: %+v", st)
	}
	verifyOK(t, e)

	// Same store as one clean run.
	clean := openTest(t)
	ingestString(t, clean, in)
	want, _ := clean.Stats(context.Background())
	got, _ := e.Stats(context.Background())
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stats after cancel + resume:\n got %+v\nwant %+v", got, want)
	}
	for _, ref := range []string{"user_id:u000", "user_id:u080", "email:u149@example.com"} {
		p, q := mustProfile(t, e, ref), mustProfile(t, clean, ref)
		if p.EventCount != q.EventCount || len(p.Identities) != len(q.Identities) {
			t.Errorf("%s: %d events %d ids, clean run %d %d", ref, p.EventCount, len(p.Identities), q.EventCount, len(q.Identities))
		}
	}
}

func TestErasedEventsComeBackOnlyAfterUnsuppress(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e := openDir(t, dir)
	e.unitEvents = 3 // the subject's events spread over several blocks
	in := manyPeople(4)
	ingestString(t, e, in)
	plan, err := e.Erase(ctx, "user_id:u001", EraseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The same messages again: the subject's are suppressed, not
	// duplicates; the others are duplicates.
	if st := ingestString(t, e, in); st.Suppressed != 4 || st.Duplicates != 12 || st.Ingested != 0 {
		t.Fatalf("re-ingest after erase: %+v", st)
	}
	if _, err := e.Unsuppress(ctx, plan.Profile); err != nil {
		t.Fatal(err)
	}
	e.Close()
	e = openDir(t, dir) // the forgotten digests stay forgotten on disk
	if st := ingestString(t, e, in); st.Ingested != 4 || st.Duplicates != 12 {
		t.Fatalf("re-ingest after unsuppress: %+v", st)
	}
}

// TestCancelledIngestCommitsUnitsInOrder cancels ingests whose units are
// one event each, so several units wait for their commit when the cancel
// comes. Each unit stores the ingest's counters as absolute values, so the
// units must land in the order they were built: then the stored event
// count equals the number of messageIds stored. (Committed side by side,
// the last two units raced and an older count could land last.)
func TestCancelledIngestCommitsUnitsInOrder(t *testing.T) {
	in := manyPeople(50) // 200 events
	for round := range 5 {
		dir := t.TempDir()
		e := openDir(t, dir)
		e.unitEvents = 1
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		_, err := e.IngestReader(ctx, strings.NewReader(in), "test", IngestOptions{Progress: func(IngestProgress) {
			if calls++; calls == 60+round*20 {
				cancel()
			}
		}})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("round %d: cancelled ingest: %v", round, err)
		}
		e.Close()
		e = openDir(t, dir)
		msgs, err := e.messages()
		if err != nil {
			t.Fatal(err)
		}
		st, _ := e.Stats(context.Background())
		if st.Events != int64(msgs.Len()) || st.Events == 0 {
			t.Fatalf("round %d: stored count %d events, stored messageIds %d", round, st.Events, msgs.Len())
		}
		e.Close()
	}
}

// TestIngestReservesForItsInput checks that an ingest sizes the message
// set from its input before the first event (a file's size, or the
// caller's SizeHint for a stream), so the set does not grow by doubling
// while the events come in. The events carry a 6 KB property: their count
// alone would leave the set ten times smaller.
func TestIngestReservesForItsInput(t *testing.T) {
	var in strings.Builder
	pad := strings.Repeat("x", 6<<10)
	for i := range 100 {
		in.WriteString(msg(fmt.Sprintf("m%d", i), "track", ct0, map[string]any{"userId": "u1", "event": "Viewed", "properties": map[string]any{"pad": pad}}))
	}
	want := in.Len() / minEventBytes

	e := openTest(t)
	path := filepath.Join(t.TempDir(), "big.ndjson")
	if err := os.WriteFile(path, []byte(in.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := e.IngestFiles(context.Background(), []string{path}, IngestOptions{}); err != nil || st.Ingested != 100 {
		t.Fatalf("file: %+v, %v", st, err)
	}
	if got := e.msgs.Cap(); got < want {
		t.Errorf("after a %d-byte file the message set holds %d before growing, want >= %d", in.Len(), got, want)
	}

	e = openTest(t)
	st, err := e.IngestReader(context.Background(), strings.NewReader(in.String()), "stream", IngestOptions{SizeHint: int64(in.Len())})
	if err != nil || st.Ingested != 100 {
		t.Fatalf("stream: %+v, %v", st, err)
	}
	if got := e.msgs.Cap(); got < want {
		t.Errorf("after a stream with SizeHint %d the message set holds %d before growing, want >= %d", in.Len(), got, want)
	}
	if got := e.idents.Cap(); got < want/2 {
		t.Errorf("the identity index holds %d before growing, want >= %d", got, want/2)
	}
}
