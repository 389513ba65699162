package engine

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loupe-cdp/loupe/store"
)

func track(id, who string, at time.Time) string {
	k, v := whoField(who)
	return msg(id, "track", at, map[string]any{k: v, "event": "E"})
}

// allEvents pages through ref's events limit at a time.
func allEvents(t *testing.T, e *Engine, ref string, limit int) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for range 1000 {
		page, err := e.Events(context.Background(), ref, cursor, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) > limit {
			t.Fatalf("page of %d events, limit %d", len(page.Events), limit)
		}
		for _, ev := range page.Events {
			ids = append(ids, ev.MessageID)
		}
		if cursor = page.Next; cursor == "" {
			return ids
		}
	}
	t.Fatal("paging does not end")
	return nil
}

// eventKeys counts the stored event values under every pid.
func eventKeys(t *testing.T, e *Engine) int {
	t.Helper()
	n := 0
	e.db.View(func(tx *store.Txn) error {
		return tx.Iterate([]byte{store.PrefixEvent}, store.IterOptions{KeysOnly: true}, func(_, _ []byte) error {
			n++
			return nil
		})
	})
	return n
}

func TestEventsPageAcrossOverlappingBatches(t *testing.T) {
	// Two ingests of one person, times interleaved, plus an anonymous
	// visitor merged in later: the values' time ranges overlap and the
	// events live under two pids. Every page must be exactly the next
	// events newest first.
	e := openTest(t)
	e.unitEvents = 4
	h := func(n float64) time.Time { return ct0.Add(time.Duration(n * float64(time.Hour))) }
	var in1, in2 strings.Builder
	for _, n := range []float64{10, 2, 7, 5, 1, 9, 3} {
		in1.WriteString(track(fmt.Sprintf("a%v", n), "user_id:u1", h(n)))
	}
	for _, n := range []float64{8, 4, 6, 0, 11} {
		in2.WriteString(track(fmt.Sprintf("b%v", n), "user_id:u1", h(n)))
	}
	for _, n := range []float64{12, 2.5, 6.5} {
		in2.WriteString(track(fmt.Sprintf("c%v", n), "anonymous_id:v1", h(n)))
	}
	in2.WriteString(msg("link", "identify", h(13), map[string]any{"userId": "u1", "anonymousId": "v1"}))
	ingestString(t, e, in1.String())
	ingestString(t, e, in2.String())

	want := []string{"link", "c12", "b11", "a10", "a9", "b8", "a7", "c6.5", "b6", "a5", "b4", "a3", "c2.5", "a2", "a1", "b0"}
	if keys := eventKeys(t, e); keys >= len(want) {
		t.Fatalf("%d stored values for %d events: not batched", keys, len(want))
	}
	for _, limit := range []int{1, 3, 4, 50} {
		if got := allEvents(t, e, "user_id:u1", limit); !slices.Equal(got, want) {
			t.Errorf("limit %d:\n got %v\nwant %v", limit, got, want)
		}
	}
}

func TestUnmergeSplitsABatch(t *testing.T) {
	// One unit, one profile, one stored value holding the events of two
	// identifiers; detaching one splits the value between the profiles.
	e := openTest(t)
	ingestString(t, e,
		track("e1", "anonymous_id:a1", ct0)+
			track("e2", "anonymous_id:a1", ct0.Add(time.Minute))+
			msg("e3", "identify", ct0.Add(2*time.Minute), map[string]any{"userId": "u1", "anonymousId": "a1"})+
			track("e4", "user_id:u1", ct0.Add(3*time.Minute)))
	if n := eventKeys(t, e); n != 1 {
		t.Fatalf("setup: %d stored values, want the 4 events in one", n)
	}
	if _, err := e.Unmerge(context.Background(), "anonymous_id:a1"); err != nil {
		t.Fatal(err)
	}
	u1, a1 := allEvents(t, e, "user_id:u1", 10), allEvents(t, e, "anonymous_id:a1", 10)
	if !slices.Equal(u1, []string{"e4", "e3"}) || !slices.Equal(a1, []string{"e2", "e1"}) {
		t.Fatalf("after unmerge: u1 %v, a1 %v", u1, a1)
	}
	if n := eventKeys(t, e); n != 2 {
		t.Errorf("%d stored values after the split, want 2", n)
	}
}

func TestSchema1EventValuesStillRead(t *testing.T) {
	// Schema 1 stored one event per value (version 1); a migrated dir
	// keeps them, and every reader takes both forms.
	e := openTest(t)
	ingestString(t, e, track("x1", "user_id:u1", ct0)+track("x2", "user_id:u1", ct0.Add(time.Hour))+
		track("x3", "user_id:u1", ct0.Add(2*time.Hour)))
	want := allEvents(t, e, "user_id:u1", 2)
	err := e.db.Update(func(tx *store.Txn) error {
		var keys, vals [][]byte
		tx.Iterate([]byte{store.PrefixEvent}, store.IterOptions{}, func(k, v []byte) error {
			keys, vals = append(keys, slices.Clone(k)), append(vals, slices.Clone(v))
			return nil
		})
		for i, k := range keys {
			if err := tx.Delete(k); err != nil {
				return err
			}
			pid := store.Uint64(k, 1)
			err := forEachEvent(k, vals[i], func(ns int64, seq uint64, body []byte) error {
				return tx.Set(store.EventKey(pid, ns, seq), append([]byte{eventCodecV1}, body...))
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := eventKeys(t, e); n != 3 {
		t.Fatalf("setup: %d values, want 3 single events", n)
	}
	if got := allEvents(t, e, "user_id:u1", 2); !slices.Equal(got, want) {
		t.Errorf("version 1 values: %v, want %v", got, want)
	}
	x, err := e.ExportSubject(context.Background(), "user_id:u1")
	if err != nil || len(x.Events) != 3 || x.Events[0].MessageID != "x1" {
		t.Errorf("export of version 1 values: %v %+v", err, x)
	}
}

// testLinks is a link block of two links.
func testLinks() *linkBlock {
	var lb linkBlock
	lb.add([]byte("\x05emailann@example.com"), []byte("\x07user_idu1"), linkRec{M: "m1", T: 7})
	lb.add([]byte("\x07user_idu1"), []byte("\x09device_idd1"), linkRec{M: "m2", T: -3})
	return &lb
}

// Batches that compress are stored as S2 blocks (version 3), the others as
// they are (version 2), either behind the links their events made (version
// 4); all read back event for event, and link for link.
func TestEventBatchValueVersions(t *testing.T) {
	long := []byte(`{"type":"page","properties":{"path":"/pricing","title":"Pricing"},"context":{"userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)","page":{"path":"/pricing","title":"Pricing"}}}`)
	for _, c := range []struct {
		name    string
		events  int
		raw     []byte
		links   *linkBlock
		version byte // of the events
	}{
		{"compressible", 20, long, nil, eventCodecBatchS2},
		{"too small to pay", 1, []byte(`{"type":"track"}`), nil, eventCodecBatch},
		{"compressible with links", 20, long, testLinks(), eventCodecBatchS2},
		{"too small to pay with links", 1, []byte(`{"type":"track"}`), testLinks(), eventCodecBatch},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b eventBatch
			for i := range c.events {
				b.add(ct0.UnixNano()+int64(i), uint64(i+1), []byte("\x04page\x07Pricing\x02m"+string(rune('a'+i))), c.raw)
			}
			var scratch valueScratch
			v := b.value(&scratch, c.links)
			if again := b.value(&scratch, c.links); !bytes.Equal(again, v) {
				t.Fatal("a reused scratch changed the value")
			}
			links, events, err := splitLinks(v)
			if err != nil {
				t.Fatal(err)
			}
			if c.links == nil {
				if links != nil || !bytes.Equal(events, v) {
					t.Fatalf("links %q split off a value made without", links)
				}
			} else if v[0] != eventCodecLinked || !bytes.Equal(links, c.links.value()) {
				t.Fatalf("version %d, links %q, want version %d and %q", v[0], links, eventCodecLinked, c.links.value())
			}
			if events[0] != c.version {
				t.Fatalf("events of version %d, want %d (%d bytes)", events[0], c.version, len(events))
			}
			n := 0
			err = forEachEvent(b.key(1), v, func(ns int64, seq uint64, body []byte) error {
				ev, err := decodeEvent(1, ns, body)
				if err != nil || ns != ct0.UnixNano()+int64(n) || seq != uint64(n+1) || !bytes.Equal(ev.Raw, c.raw) || ev.MessageID != "m"+string(rune('a'+n)) {
					t.Errorf("event %d: %v at %d seq %d: %+v", n, err, ns, seq, ev)
				}
				n++
				return nil
			})
			if err != nil || n != c.events {
				t.Fatalf("read %d of %d events: %v", n, c.events, err)
			}
		})
	}
}

func TestDamagedEventValuesNeverPanic(t *testing.T) {
	// A stored value cut short or with a byte flipped is an error for the
	// reader, never a panic or a read past the value; compressed or not,
	// with links or not.
	var small, big eventBatch
	small.add(ct0.UnixNano(), 7, []byte("\x05track\x01E\x02m1"), []byte(`{"type":"track"}`))
	small.add(ct0.UnixNano()+1, 9, []byte("\x04page\x00\x02m2"), []byte(`{"type":"page"}`))
	for i := range 8 {
		big.add(ct0.UnixNano()+int64(i), uint64(i+1), []byte("\x04page\x00\x02m"+string(rune('a'+i))), []byte(`{"type":"page","properties":{"path":"/a/b/c","title":"A B C"}}`))
	}
	for _, c := range []struct {
		b     *eventBatch
		links *linkBlock
	}{{&small, nil}, {&big, nil}, {&small, testLinks()}, {&big, testLinks()}} {
		b := c.b
		k, v := b.key(1), b.value(nil, c.links)
		n := 0
		if err := forEachEvent(k, v, func(int64, uint64, []byte) error { n++; return nil }); err != nil || n != len(b.items) {
			t.Fatalf("intact version %d value: %d events, %v", v[0], n, err)
		}
		for cut := range len(v) {
			if err := forEachEvent(k, v[:cut], func(int64, uint64, []byte) error { return nil }); err == nil {
				t.Errorf("version %d value cut to %d of %d bytes read without error", v[0], cut, len(v))
			}
		}
		for i := range v {
			bad := slices.Clone(v)
			bad[i] ^= 0xff
			forEachEvent(k, bad, func(ns int64, seq uint64, body []byte) error {
				decodeEvent(1, ns, body)
				return nil
			})
			if links, _, err := splitLinks(bad); err == nil && links != nil {
				forEachLink(links, func(_, _ []byte, _ linkRec) error { return nil })
			}
		}
	}
	if v := big.value(nil, nil); v[0] != eventCodecBatchS2 {
		t.Fatalf("the big batch is stored as version %d, want it compressed", v[0])
	}
}

func TestDamagedLinkBlocksNeverPanic(t *testing.T) {
	lb := testLinks()
	v := lb.value()
	if len(v) != lb.size() {
		t.Fatalf("block of %d bytes, size says %d", len(v), lb.size())
	}
	var got []linkRec
	if err := forEachLink(v, func(_, _ []byte, r linkRec) error { got = append(got, r); return nil }); err != nil ||
		len(got) != 2 || got[1] != (linkRec{M: "m2", T: -3}) {
		t.Fatalf("intact block: %+v %v", got, err)
	}
	for cut := range len(v) {
		if err := forEachLink(v[:cut], func(_, _ []byte, _ linkRec) error { return nil }); err == nil {
			t.Errorf("block cut to %d of %d bytes read without error", cut, len(v))
		}
	}
	for i := range v {
		bad := slices.Clone(v)
		bad[i] ^= 0xff
		forEachLink(bad, func(_, _ []byte, _ linkRec) error { return nil })
	}
}

func TestSummedPropertiesFoldIntoProfile(t *testing.T) {
	// Ingest takes the summed properties from the parse workers, unmerge
	// re-reads them from the stored events: both add up the same.
	e := openTest(t)
	order := func(id, who string, at time.Time, props string) string {
		key, v := whoField(who)
		return `{"type":"track","event":"Order Completed","messageId":"` + id + `","` + key + `":"` + v +
			`","timestamp":"` + at.Format(time.RFC3339) + `","properties":` + props + "}\n"
	}
	ingestString(t, e, order("o1", "user_id:u1", ct0, `{"revenue":10.5,"quantity":2,"sku":"a"}`)+
		order("o2", "user_id:u1", ct0.Add(time.Hour), `{"revenue":"4.5","nested":{"revenue":99}}`)+
		order("o3", "anonymous_id:a1", ct0.Add(2*time.Hour), `{"total":7}`)+
		msg("link", "identify", ct0.Add(3*time.Hour), map[string]any{"userId": "u1", "anonymousId": "a1"}))
	want := map[string]float64{"revenue": 15, "quantity": 2, "total": 7}
	if got := mustProfile(t, e, "user_id:u1").Events["Order Completed"].Sums; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sums after ingest: %v, want %v", got, want)
	}
	if _, err := e.Unmerge(context.Background(), "anonymous_id:a1"); err != nil {
		t.Fatal(err)
	}
	want = map[string]float64{"revenue": 15, "quantity": 2}
	if got := mustProfile(t, e, "user_id:u1").Events["Order Completed"].Sums; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sums after unmerge: %v, want %v", got, want)
	}
}
