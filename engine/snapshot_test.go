package engine

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/loupe-cdp/loupe/rules"
	"github.com/loupe-cdp/loupe/store"
)

var snapNow = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func openSnapEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := Open(t.TempDir(), Options{Now: func() time.Time { return snapNow }, Actor: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func basicEngine(t testing.TB) *Engine {
	t.Helper()
	e := openSnapEngine(t)
	if _, err := e.IngestFiles(context.Background(), []string{"../testdata/segment-basic.ndjson"}, IngestOptions{}); err != nil {
		t.Fatal(err)
	}
	return e
}

func demoEngine(t testing.TB, people int) *Engine {
	t.Helper()
	e := openSnapEngine(t)
	// Small units, so that the demo spans many transactions: profiles
	// written in one unit are read back and changed in the next, and
	// commits overlap the building of the next unit.
	e.unitEvents = 500
	if _, err := e.IngestReader(context.Background(), bytes.NewReader(demoNDJSON(t, people)), "demo", IngestOptions{}); err != nil {
		t.Fatal(err)
	}
	return e
}

// storedProfiles reads every profile record straight from the store.
func storedProfiles(t testing.TB, e *Engine) map[uint64]*profileRec {
	t.Helper()
	out := map[uint64]*profileRec{}
	err := e.db.View(func(tx *store.Txn) error {
		return tx.Iterate([]byte{store.PrefixProfile}, store.IterOptions{}, func(k, v []byte) error {
			p, err := decodeProfile(store.Uint64(k, 1), v)
			out[p.PID] = p
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkSnapshotEqualsStore compares every row of the snapshot with the
// stored profile it came from.
func checkSnapshotEqualsStore(t *testing.T, e *Engine) {
	t.Helper()
	tab, err := e.snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stored := storedProfiles(t, e)
	if tab.Live() != len(stored) {
		t.Fatalf("snapshot has %d live rows, store %d profiles", tab.Live(), len(stored))
	}
	for pid, p := range stored {
		row, ok := tab.Lookup(pidString(pid))
		if !ok {
			t.Fatalf("%s missing from snapshot", pidString(pid))
		}
		got := tab.Row(row)
		want := e.ruleProfile(p)
		if !got.FirstSeen.Equal(want.FirstSeen) || !got.LastSeen.Equal(want.LastSeen) {
			t.Errorf("%s: seen %v..%v, want %v..%v", got.ID, got.FirstSeen, got.LastSeen, want.FirstSeen, want.LastSeen)
		}
		if len(got.Traits) != len(want.Traits) {
			t.Errorf("%s: traits %v, want %v", got.ID, got.Traits, want.Traits)
		}
		for k, v := range want.Traits {
			if v != nil && !reflect.DeepEqual(got.Traits[k], v) {
				t.Errorf("%s: trait %s = %#v, want %#v", got.ID, k, got.Traits[k], v)
			}
		}
		for typ, vs := range want.Identities {
			if !slices.Equal(got.Identities[typ], vs) {
				t.Errorf("%s: identities %s = %v, want %v", got.ID, typ, got.Identities[typ], vs)
			}
		}
		// The build reads consent in bulk; ruleProfile reads it per
		// profile, merged-away pids included.
		for purpose, ok := range want.Consent {
			if got.Consent[purpose] != ok {
				t.Errorf("%s: consented(%q) = %v, want %v", got.ID, purpose, got.Consent[purpose], ok)
			}
		}
		if len(got.Events) != len(p.Events) {
			t.Errorf("%s: %d event names, want %d", got.ID, len(got.Events), len(p.Events))
		}
		for name, er := range p.Events {
			ge := got.Events[name]
			if ge.Count != er.N || ge.First.UnixNano() != er.F || ge.Last.UnixNano() != er.L {
				t.Errorf("%s %s: %d %v %v, want %d", got.ID, name, ge.Count, ge.First, ge.Last, er.N)
			}
			if !maps.Equal(ge.Sums, er.S) && len(ge.Sums)+len(er.S) > 0 {
				t.Errorf("%s %s: sums %v, want %v", got.ID, name, ge.Sums, er.S)
			}
			if len(ge.Recent) != len(er.R) {
				t.Fatalf("%s %s: %d occurrences, want %d", got.ID, name, len(ge.Recent), len(er.R))
			}
			for i, o := range ge.Recent {
				if o.Unix != er.R[i] {
					t.Errorf("%s %s occurrence %d at %d, want %d", got.ID, name, i, o.Unix, er.R[i])
				}
				for prop, vals := range er.RV {
					if o.Values[prop] != vals[i] {
						t.Errorf("%s %s occurrence %d %s = %v, want %v", got.ID, name, i, prop, o.Values[prop], vals[i])
					}
				}
			}
		}
	}
}

func TestSnapshotEqualsStore(t *testing.T) {
	t.Run("basic", func(t *testing.T) { checkSnapshotEqualsStore(t, basicEngine(t)) })
	t.Run("demo", func(t *testing.T) {
		e := demoEngine(t, 500)
		checkSnapshotEqualsStore(t, e)
		checkLastSeenIndex(t, e)
	})
}

// checkLastSeenIndex checks that the last-seen index holds exactly one
// live entry per stored profile, at the profile's last-seen time: each
// unit that moves a profile's last seen must write a newer entry, and each
// merge must mark the merged-away profile gone.
func checkLastSeenIndex(t *testing.T, e *Engine) {
	t.Helper()
	stored := storedProfiles(t, e)
	indexed := map[uint64]int64{}
	err := e.db.View(func(tx *store.Txn) error {
		lt, err := readLastSeen(context.Background(), tx)
		if err != nil {
			return err
		}
		for _, en := range lt.entries() {
			if _, dup := indexed[en.pid]; dup {
				t.Errorf("%s has two last-seen entries", pidString(en.pid))
			}
			indexed[en.pid] = en.last
		}
		if lt.n != len(indexed) {
			t.Errorf("the index counts %d live profiles, lists %d", lt.n, len(indexed))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(indexed) != len(stored) {
		t.Errorf("last-seen index has %d profiles, store %d", len(indexed), len(stored))
	}
	for pid, p := range stored {
		if last, ok := indexed[pid]; !ok || last != p.Last {
			t.Errorf("%s: indexed last seen %d (present %v), profile %d", pidString(pid), last, ok, p.Last)
		}
	}
}

func writeNDJSON(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "more.ndjson")
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSnapshotKeptCurrentAfterIngest(t *testing.T) {
	ctx := context.Background()
	e := basicEngine(t)
	tab, err := e.snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := tab.Live()
	eve, err := e.Resolve(ctx, "anonymous_id:anon-eve")
	if err != nil {
		t.Fatal(err)
	}
	// Eve signs up as a new user (a new profile), then a second event
	// joins her anonymous id with that user: one of the two merges away.
	more := writeNDJSON(t,
		`{"type":"identify","messageId":"k-1","userId":"user-eve","traits":{"email":"eve@example.com","plan":"pro"},"timestamp":"2026-10-30T10:00:00Z"}`,
		`{"type":"track","messageId":"k-2","userId":"user-eve","anonymousId":"anon-eve","event":"Order Completed","properties":{"revenue":250},"timestamp":"2026-10-30T10:05:00Z"}`,
		`{"type":"track","messageId":"k-3","userId":"user-ben","event":"Order Completed","properties":{"revenue":41},"timestamp":"2026-10-31T10:05:00Z"}`,
	)
	st, err := e.IngestFiles(ctx, []string{more}, IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Merges != 1 || st.ProfilesCreated != 1 {
		t.Fatalf("ingest %+v: want 1 profile created and 1 merge", st)
	}
	tab, err = e.snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tab.Live() != before {
		t.Fatalf("live rows %d, want %d (one created, one merged away)", tab.Live(), before)
	}
	survivor, err := e.Resolve(ctx, "user_id:user-eve")
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{eve, "p0"} {
		if gone == survivor {
			continue
		}
		if _, ok := tab.Lookup(gone); ok {
			t.Errorf("%s merged away but still in the snapshot", gone)
		}
	}
	row, ok := tab.Lookup(survivor)
	if !ok {
		t.Fatalf("survivor %s not in snapshot", survivor)
	}
	if got := tab.Row(row).Events["Order Completed"].Sums["revenue"]; got != 250 {
		t.Errorf("survivor revenue %v, want 250", got)
	}
	checkSnapshotEqualsStore(t, e)
	res, err := e.Preview(ctx, `traits.plan == "pro" && sum("Order Completed", "revenue") >= 100`, PreviewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Count != 2 { // Ben (59.90 + 41) and Eve (250)
		t.Errorf("count %d, want 2", res.Count)
	}
}

func TestSnapshotTouchAndInvalidate(t *testing.T) {
	ctx := context.Background()
	e := basicEngine(t)
	if _, err := e.snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	ben, _ := e.Resolve(ctx, "user_id:user-ben")
	pid, _ := parsePID(ben)
	// A write that bypasses the ingest writer.
	if err := e.db.Update(func(tx *store.Txn) error { return tx.Delete(store.PIDKey(store.PrefixProfile, pid)) }); err != nil {
		t.Fatal(err)
	}
	e.snapshotTouch(pid)
	tab, _ := e.snapshot(ctx)
	if _, ok := tab.Lookup(ben); ok {
		t.Fatal("touched, deleted profile still in snapshot")
	}
	e.invalidateSnapshot()
	checkSnapshotEqualsStore(t, e)
}

func TestProfileIndexFromSnapshot(t *testing.T) {
	ctx := context.Background()
	e := demoEngine(t, 300)
	stored := storedProfiles(t, e)
	check := func(sort SortKey, key func(p *profileRec) int64) {
		ix, err := e.ProfileIndex(ctx, ProfileQuery{Sort: sort})
		if err != nil {
			t.Fatal(err)
		}
		if ix.Len() != len(stored) || ix.Total() != len(stored) {
			t.Fatalf("%v: len %d total %d, want %d", sort, ix.Len(), ix.Total(), len(stored))
		}
		ids := ix.IDs(0, ix.Len())
		for i := 1; i < len(ids); i++ {
			a, _ := parsePID(ids[i-1])
			b, _ := parsePID(ids[i])
			if key(stored[a]) < key(stored[b]) {
				t.Fatalf("%v: %s (%d) before %s (%d)", sort, ids[i-1], key(stored[a]), ids[i], key(stored[b]))
			}
		}
	}
	check(SortFirstSeen, func(p *profileRec) int64 { return p.First })
	check(SortEvents, func(p *profileRec) int64 { return p.Count })

	ix, err := e.ProfileIndex(ctx, ProfileQuery{Sort: SortEvents, Rule: `traits.plan == "pro"`})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, p := range stored {
		if tr, ok := p.Traits["plan"]; ok && tr.V == "pro" {
			want++
		}
	}
	if ix.Len() != want || ix.Total() != len(stored) || want == 0 {
		t.Fatalf("rule filter: %d of %d, want %d of %d", ix.Len(), ix.Total(), want, len(stored))
	}
	for _, id := range ix.IDs(0, ix.Len()) {
		pid, _ := parsePID(id)
		if stored[pid].Traits["plan"].V != "pro" {
			t.Fatalf("%s is not pro", id)
		}
	}

	_, err = e.ProfileIndex(ctx, ProfileQuery{Rule: `traits.plan == "pro" && evnt_count("x") > 1`})
	var rerr *rules.Error
	if !errors.As(err, &rerr) || rerr.Column != 24 || rerr.Suggestion != "event_count" {
		t.Fatalf("bad rule: %v (%#v), want *rules.Error at column 24 suggesting event_count", err, rerr)
	}
}

func TestTraitFrequencyAndKeys(t *testing.T) {
	ctx := context.Background()
	e := basicEngine(t)
	keys := e.TraitKeys()
	for _, k := range []string{"plan", "email", "city"} {
		if !slices.Contains(keys, k) {
			t.Errorf("trait keys %v lack %s", keys, k)
		}
	}
	freq, err := e.TraitFrequency(ctx, "plan", "")
	if err != nil {
		t.Fatal(err)
	}
	// Ann: free (the later identify with a junk userId still lands on her
	// anonymous id), Ben pro, Carla free, Dan enterprise.
	stored := storedProfiles(t, e)
	want := map[string]int{}
	for _, p := range stored {
		if tr, ok := p.Traits["plan"]; ok {
			want[valueText(tr.V)]++
		}
	}
	got := map[string]int{}
	for i, vc := range freq {
		got[vc.Value] = vc.Count
		if i > 0 && freq[i-1].Count < vc.Count {
			t.Errorf("not most frequent first: %v", freq)
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("frequency %v, want %v", got, want)
	}
	freq, err = e.TraitFrequency(ctx, "plan", `has_event("Order Completed")`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, vc := range freq {
		n += vc.Count
	}
	if n != 2 {
		t.Errorf("plans of buyers %v, want 2 profiles", freq)
	}
	infos, err := e.Traits(ctx)
	if err != nil || len(infos) != len(keys) {
		t.Fatalf("traits: %v, %d infos for %d keys", err, len(infos), len(keys))
	}
}

func TestSnapshotFollowsUnmerge(t *testing.T) {
	e := openTest(t)
	ingestString(t, e, `{"type":"identify","messageId":"1","userId":"u1","anonymousId":"kiosk","traits":{"plan":"pro"}}
{"type":"identify","messageId":"2","anonymousId":"kiosk","traits":{"email":"two@example.com"}}
`)
	ctx := context.Background()
	ix, err := e.ProfileIndex(ctx, ProfileQuery{Sort: SortEvents})
	if err != nil || ix.Len() != 1 {
		t.Fatalf("before: %v %d", err, ix.Len())
	}
	if _, err := e.Unmerge(ctx, "email:two@example.com"); err != nil {
		t.Fatal(err)
	}
	ix, err = e.ProfileIndex(ctx, ProfileQuery{Sort: SortEvents})
	if err != nil || ix.Len() != 2 {
		t.Fatalf("after unmerge the snapshot lists %d profiles (%v), want 2", ix.Len(), err)
	}
}
