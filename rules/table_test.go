package rules

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// expectRow is what Table.Row returns for p: traits and identities as
// given (no nil traits, no empty identity lists), times through Unix ns in
// UTC, only granted consent, no event with a zero count and no retained
// occurrences, and nil Sums/Recent/Values when empty. Round trips are exact
// when, per event name, every row with the event has the same Sums keys and
// every occurrence the same Values keys (else Row fills in zeros).
func expectRow(p *Profile) *Profile {
	q := &Profile{
		ID: p.ID, Traits: map[string]any{}, Identities: map[string][]string{},
		FirstSeen: timeOf(nsOf(p.FirstSeen)), LastSeen: timeOf(nsOf(p.LastSeen)),
		Events: map[string]EventStats{}, Consent: map[string]bool{}, Suppressed: p.Suppressed,
	}
	for k, v := range p.Traits {
		if v, _ := normalize(v); v != nil {
			q.Traits[k] = v
		}
	}
	for typ, vs := range p.Identities {
		if len(vs) > 0 {
			q.Identities[typ] = vs
		}
	}
	for name, s := range p.Events {
		if s.Count == 0 && len(s.Recent) == 0 {
			continue
		}
		e := EventStats{Count: s.Count, First: timeOf(nsOf(s.First)), Last: timeOf(nsOf(s.Last))}
		if len(s.Sums) > 0 {
			e.Sums = s.Sums
		}
		for _, o := range s.Recent {
			if len(o.Values) == 0 {
				o.Values = nil
			}
			e.Recent = append(e.Recent, o)
		}
		q.Events[name] = e
	}
	for pur, ok := range p.Consent {
		if ok {
			q.Consent[pur] = true
		}
	}
	return q
}

func checkRow(t *testing.T, tab *Table, want *Profile) {
	t.Helper()
	r, ok := tab.Lookup(want.ID)
	if !ok {
		t.Fatalf("%s: not found", want.ID)
	}
	if got, exp := tab.Row(r), expectRow(want); !reflect.DeepEqual(got, exp) {
		t.Fatalf("row %d (%s):\n got %+v\nwant %+v", r, want.ID, got, exp)
	}
}

// variedProfile has any mix of typed traits (empty and non-ASCII strings
// included), identities, events (including counts that do not fit in
// uint32), consent and times, or none of them.
func variedProfile(rng *rand.Rand, id string) *Profile {
	p := &Profile{ID: id, Traits: map[string]any{}, Identities: map[string][]string{}, Events: map[string]EventStats{}, Consent: map[string]bool{}}
	strs := []string{"", "pro", "héllo wörld", "日本語", "🙂", "a\x00b", id + "-ß"}
	if rng.IntN(4) != 0 {
		p.Traits["s"] = strs[rng.IntN(len(strs))]
	}
	if rng.IntN(2) == 0 {
		p.Traits["uniq"] = fmt.Sprintf("%s/ünïque/%d", id, rng.IntN(1e6))
	}
	if rng.IntN(2) == 0 {
		p.Traits["f"] = rng.Float64() * 100
	}
	if rng.IntN(2) == 0 {
		p.Traits["i"] = rng.Int64N(1000) - 500
	}
	if rng.IntN(3) == 0 {
		p.Traits["b"] = rng.IntN(2) == 0
	}
	if rng.IntN(6) == 0 {
		p.Traits["arr"] = []any{"x", 1.5}
	}
	if rng.IntN(5) == 0 {
		p.Traits["gone"] = nil
	}
	for _, typ := range []string{"email", "phone", "device_id"} {
		switch rng.IntN(4) {
		case 0:
			p.Identities[typ] = []string{id + "@例え.jp"}
		case 1:
			p.Identities[typ] = []string{"", typ + "-" + id, strs[rng.IntN(len(strs))]}
		case 2:
			p.Identities[typ] = []string{}
		}
	}
	for _, name := range []string{"A", "B", "Order", "Rare"} {
		if name == "Rare" && rng.IntN(20) != 0 || rng.IntN(2) == 0 {
			continue
		}
		s := EventStats{Count: int64(rng.IntN(6))}
		switch rng.IntN(12) {
		case 0:
			s.Count = math.MaxUint32 + int64(rng.IntN(3)) - 1 // 2^32-2 .. 2^32
		case 1:
			s.Count = -int64(rng.IntN(3))
		case 2:
			s.Count = math.MaxInt64
		}
		if rng.IntN(4) != 0 {
			s.First = time.Unix(rng.Int64N(2e9), rng.Int64N(1e9))
			s.Last = s.First.Add(time.Duration(rng.Int64N(1e15)))
		}
		if name == "Order" {
			s.Sums = map[string]float64{"revenue": float64(rng.IntN(1000)), "qty": float64(rng.IntN(9))}
		}
		for k := rng.IntN(4); k > 0; k-- {
			o := Occurrence{Unix: rng.Int64N(2e9)}
			if name == "Order" {
				o.Values = map[string]float64{"revenue": float64(rng.IntN(100)), "qty": 1}
			}
			s.Recent = append(s.Recent, o)
		}
		p.Events[name] = s
	}
	if rng.IntN(3) != 0 {
		p.FirstSeen = time.Unix(rng.Int64N(2e9), rng.Int64N(1e9)).In(time.FixedZone("X", 3600))
		p.LastSeen = p.FirstSeen.Add(time.Hour)
	}
	for _, pur := range []string{"analytics", "ads"} {
		if rng.IntN(2) == 0 {
			p.Consent[pur] = rng.IntN(2) == 0
		}
	}
	p.Suppressed = rng.IntN(10) == 0
	return p
}

func TestRowRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	b := NewTableBuilder()
	var ps []*Profile
	for i := range 3000 {
		p := variedProfile(rng, fmt.Sprintf("v%d", i))
		if i%97 == 0 {
			p = &Profile{ID: p.ID} // nothing at all
		}
		ps = append(ps, p)
		if err := b.Append(p); err != nil {
			t.Fatal(err)
		}
	}
	tab := b.Build()
	for _, p := range ps {
		checkRow(t, tab, p)
	}
	// Rebuilding from Row gives the same rows.
	b = NewTableBuilder()
	for i := range tab.Len() {
		if err := b.Append(tab.Row(i)); err != nil {
			t.Fatal(err)
		}
	}
	again := b.Build()
	for i := range tab.Len() {
		if x, y := tab.Row(i), again.Row(i); !reflect.DeepEqual(x, y) {
			t.Fatalf("row %d differs after a rebuild:\n%+v\n%+v", i, x, y)
		}
	}
}

// Event columns are sparse: rank must be right on both sides of every
// 64-row word boundary, after runs of rows (and whole words) without the
// event, and for rows beyond the last one with it.
func TestEventColumnsAcrossWordBoundaries(t *testing.T) {
	withA := []int{0, 1, 62, 63, 64, 65, 127, 128, 129, 191, 192, 255, 256, 320, 511, 512, 700}
	const rows = 800
	sec := testNow.Add(-5 * day).Unix()
	b := NewTableBuilder()
	var ps []*Profile
	for r := range rows {
		p := &Profile{ID: fmt.Sprintf("r%03d", r)}
		if slices.Contains(withA, r) {
			n := int64(r + 1)
			p.Events = map[string]EventStats{"A": {
				Count: n, First: testNow.Add(-time.Duration(r+10) * day), Last: time.Unix(sec, 0),
				Sums:   map[string]float64{"v": float64(r)},
				Recent: []Occurrence{{Unix: sec, Values: map[string]float64{"v": float64(r)}}},
			}}
		}
		if r == 400 { // the only row with B: words before it have no B at all
			p.Events = map[string]EventStats{"B": {Count: 1, Recent: []Occurrence{{Unix: sec}}}}
		}
		ps = append(ps, p)
		if err := b.Append(p); err != nil {
			t.Fatal(err)
		}
	}
	tab := b.Build()
	a := tab.events["A"]
	cutNs, cutSec := cutoffs(testNow.UnixNano(), 30*day)
	for r := range rows + 130 { // also rows past the end of every column
		k := slices.Index(withA, r)
		d, ok := a.dense(r)
		if ok != (k >= 0) || ok && d != k {
			t.Fatalf("row %d: dense %d %v, want %d", r, d, ok, k)
		}
		var wantN, wantSum, wantWin int64
		wantLast := int64(zeroNs)
		if k >= 0 {
			wantN, wantSum, wantLast, wantWin = int64(r+1), int64(r), time.Unix(sec, 0).UnixNano(), 1
			if r+10 < 30 { // first inside the window: the all-time count
				wantWin = wantN
			}
		}
		if got := a.cnt(r); got != wantN {
			t.Errorf("row %d: count %d, want %d", r, got, wantN)
		}
		if got := a.sum(r, 0, false, 0, 0); got != float64(wantSum) {
			t.Errorf("row %d: sum %v, want %d", r, got, wantSum)
		}
		if got := a.windowCount(r, cutNs, cutSec); got != wantWin {
			t.Errorf("row %d: window count %d, want %d", r, got, wantWin)
		}
		if got := a.lastNs(r); got != wantLast {
			t.Errorf("row %d: last %d, want %d", r, got, wantLast)
		}
		if r < rows {
			checkRow(t, tab, ps[r])
		}
	}
	// The planner and the VM agree, and match the rows above.
	for src, want := range map[string]int{
		`has_event("A")`:                      len(withA),
		`event_count("A") > 64`:               13,
		`event_count("A", "30d") == 1`:        len(withA) - 1, // row 1: first inside the window, all-time 2
		`sum("A", "v") >= 128`:                10,
		`sum("A", "v", "2w") == 63`:           1,
		`days_since(last_event("A")) < 6`:     len(withA),
		`has_event("B") && !has_event("A")`:   1,
		`has_event("A") || has_event("B")`:    len(withA) + 1,
		`event_count("B", "30d") + 0 == 1`:    1,    // VM leaf
		`days_since(last_event("B")) > 1e300`: rows, // B has no Last: +Inf everywhere
	} {
		checkCountBothPaths(t, tab, src, want)
	}
}

func TestUpsertDeleteCompactKeepEventsAndIdentities(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	b := NewTableBuilder()
	cur := map[string]*Profile{}
	for i := range 500 {
		p := variedProfile(rng, fmt.Sprintf("u%d", i))
		cur[p.ID] = p
		if err := b.Append(p); err != nil {
			t.Fatal(err)
		}
	}
	tab := b.Build()
	for i := range 800 {
		id := fmt.Sprintf("u%d", rng.IntN(600))
		switch rng.IntN(4) {
		case 0:
			if tab.Delete(id) != (cur[id] != nil) {
				t.Fatalf("Delete(%s)", id)
			}
			delete(cur, id)
		case 1: // the new version has no events or identities at all
			p := &Profile{ID: id, Traits: map[string]any{"s": "bare"}}
			if err := tab.Upsert(p); err != nil {
				t.Fatal(err)
			}
			cur[id] = p
		default:
			p := variedProfile(rng, id)
			if err := tab.Upsert(p); err != nil {
				t.Fatal(err)
			}
			cur[id] = p
		}
		if i%100 == 0 {
			for _, p := range cur {
				checkRow(t, tab, p)
			}
		}
	}
	if tab.Live() != len(cur) {
		t.Fatalf("live %d, want %d", tab.Live(), len(cur))
	}
	c := tab.Compact()
	if c.Len() != len(cur) || c.Live() != len(cur) {
		t.Fatalf("compact: len %d live %d, want %d", c.Len(), c.Live(), len(cur))
	}
	for _, p := range cur {
		checkRow(t, tab, p)
		checkRow(t, c, p)
	}
	// Rule results over the live rows agree between the two tables.
	for _, src := range []string{`has_event("A")`, `event_count("Order", "3650d") >= 2`, `sum("Order", "revenue") > 500`,
		`"" in identities.phone`, `len(identities.email) > 0 && identities.email[0] endsWith "例え.jp"`, `traits.s == "bare"`} {
		var ids [2][]string
		for k, tt := range []*Table{tab, c} {
			ids[k] = matchIDs(t, tt, src, EvalOptions{})
			slices.Sort(ids[k])
		}
		if !slices.Equal(ids[0], ids[1]) {
			t.Errorf("%s: %d matches before Compact, %d after", src, len(ids[0]), len(ids[1]))
		}
	}
}

// The VM reads identities through one scratch slice per worker; each row
// must still see its own values.
func TestIdentitiesPerRowInVM(t *testing.T) {
	b := NewTableBuilder()
	for i := range 5000 {
		p := &Profile{ID: fmt.Sprintf("i%d", i), Identities: map[string][]string{"email": {fmt.Sprintf("i%d@x.com", i)}}}
		if i%3 == 0 {
			p.Identities["phone"] = []string{fmt.Sprint(i), fmt.Sprint(i + 1)}
		}
		if err := b.Append(p); err != nil {
			t.Fatal(err)
		}
	}
	tab := b.Build()
	for src, want := range map[string]int{
		`identities.email[0] == id + "@x.com"`:                                                    5000,
		`len(identities.phone) == 2 && identities.phone[0] + "@x.com" == identities.email[0][1:]`: 1667,
	} {
		if got := len(matchIDs(t, tab, src, EvalOptions{Workers: 2})); got != want {
			t.Errorf("%s: %d matches, want %d", src, got, want)
		}
	}
}

func TestStringArena(t *testing.T) {
	var a strArena
	want := []string{"", "a", "", "héllo", "日本語🙂", strings.Repeat("x", 1000), "", "a\x00b"}
	var held []string
	for i := range 20_000 { // many growths of buf and ends
		s := want[i%len(want)] + fmt.Sprint(i%3)
		if i%len(want) == 0 {
			s = ""
		}
		a.add(s)
		held = append(held, a.at(i)) // taken before later growths
	}
	for i, s := range held {
		exp := want[i%len(want)] + fmt.Sprint(i%3)
		if i%len(want) == 0 {
			exp = ""
		}
		if s != exp || a.at(i) != exp {
			t.Fatalf("string %d: held %q, now %q, want %q", i, s, a.at(i), exp)
		}
	}
	a.clip()
	if cap(a.buf) != len(a.buf) || cap(a.ends) != len(a.ends) {
		t.Errorf("clip left capacity %d/%d, %d/%d", len(a.buf), cap(a.buf), len(a.ends), cap(a.ends))
	}
	if held[5] != want[5]+"2" {
		t.Errorf("held string changed after clip")
	}
}

// Strings handed out by the table stay right while its arenas grow and are
// moved (upserts, Build's clip), and dictionary lookup keys never point
// into an arena.
func TestArenaStringsSurviveGrowth(t *testing.T) {
	name := func(i int) string { return fmt.Sprintf("Ñame %d «%s»", i, strings.Repeat("é", i%7)) }
	b := NewTableBuilder()
	type held struct {
		trait any
		ids   map[string][]string
	}
	var early []held
	for i := range 200 {
		p := &Profile{ID: fmt.Sprintf("g%d", i),
			Traits:     map[string]any{"name": name(i), "plan": []string{"", "pro", "frée"}[i%3]},
			Identities: map[string][]string{"email": {name(i) + "@x", ""}}}
		if err := b.Append(p); err != nil {
			t.Fatal(err)
		}
	}
	tab := b.Build()
	for i := range 200 {
		v, _ := tab.Trait(i, "name")
		early = append(early, held{v, tab.Identities(i)})
	}
	planRow0, _ := tab.Trait(0, "plan")
	for i := 200; i < 20_000; i++ {
		p := &Profile{ID: fmt.Sprintf("g%d", i),
			Traits:     map[string]any{"name": name(i), "plan": []string{"", "pro", "frée"}[i%3]},
			Identities: map[string][]string{"email": {name(i) + "@x", ""}}}
		if err := tab.Upsert(p); err != nil {
			t.Fatal(err)
		}
	}
	for i, h := range early {
		if h.trait != name(i) {
			t.Fatalf("held trait %d: %q", i, h.trait)
		}
		if want := []string{name(i) + "@x", ""}; !slices.Equal(h.ids["email"], want) || !slices.Equal(tab.Identities(i)["email"], want) {
			t.Fatalf("identities %d: held %q, now %q", i, h.ids["email"], tab.Identities(i)["email"])
		}
	}
	if planRow0 != "" {
		t.Errorf("plan row 0 %q", planRow0)
	}
	for i := range 20_000 {
		if v, _ := tab.Trait(i, "name"); v != name(i) {
			t.Fatalf("trait %d: %q", i, v)
		}
	}
	plan := tab.traits["plan"]
	if plan.dictIdx == nil || plan.dict.len() != 3 {
		t.Fatalf("plan dictionary: %d values, lookup %v", plan.dict.len(), plan.dictIdx != nil)
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(plan.dict.buf)))
	for k := range plan.dictIdx {
		if p := uintptr(unsafe.Pointer(unsafe.StringData(k))); len(k) > 0 && p >= lo && p < lo+uintptr(cap(plan.dict.buf)) {
			t.Errorf("lookup key %q points into the arena", k)
		}
	}
	if got := matchIDs(t, tab, `traits.plan == "frée" && identities.email[0] startsWith "Ñame 5 "`, EvalOptions{}); !slices.Equal(got, []string{"g5"}) {
		t.Errorf("matches %v", got)
	}
}

// Past a uint32 offset, Append and Upsert fail with ErrTableFull and leave
// the table as it was.
func TestTableFull(t *testing.T) {
	defer func(l uint64) { offsetLimit = l }(offsetLimit)
	offsetLimit = 100
	b := NewTableBuilder()
	p := func(id, email string, recent int) *Profile {
		return &Profile{ID: id, Traits: map[string]any{"plan": "pro"}, Identities: map[string][]string{"email": {email}},
			Events: map[string]EventStats{"E": {Count: int64(recent), Recent: make([]Occurrence, recent)}}}
	}
	var err error
	n := 0
	for ; err == nil && n < 100; n++ {
		err = b.Append(p(fmt.Sprintf("f%d", n), fmt.Sprintf("%09d", n), 1)) // 9 bytes a row
	}
	if !errors.Is(err, ErrTableFull) || !strings.Contains(err.Error(), `identity type "email"`) || !strings.Contains(err.Error(), fmt.Sprintf(`"f%d"`, n-1)) {
		t.Fatalf("after %d rows: %v", n, err)
	}
	tab := b.Build()
	if tab.Len() != 11 || tab.Live() != 11 { // 11*9 = 99 bytes
		t.Fatalf("len %d live %d", tab.Len(), tab.Live())
	}
	if _, ok := tab.Lookup(fmt.Sprintf("f%d", n-1)); ok {
		t.Fatal("the failed row is in the index")
	}
	// Upsert of an existing profile that does not fit keeps the old version.
	old := p("f3", "000000003", 1)
	if err := tab.Upsert(p("f3", "toolong", 1)); !errors.Is(err, ErrTableFull) {
		t.Fatalf("upsert: %v", err)
	}
	checkRow(t, tab, old)
	if tab.Len() != 11 || tab.Deleted(3) {
		t.Fatal("failed upsert changed the table")
	}
	// Other columns still take values; an event that would pass the limit
	// of its occurrences does not.
	if err := tab.Upsert(&Profile{ID: "f3", Identities: map[string][]string{"phone": {"12345"}}}); err != nil {
		t.Fatal(err)
	}
	if err := tab.Upsert(p("x", "", 90)); !errors.Is(err, ErrTableFull) || !strings.Contains(err.Error(), `event "E"`) {
		t.Fatalf("occurrences: %v", err)
	}
	if err := tab.Upsert(&Profile{ID: "y", Traits: map[string]any{"plan": strings.Repeat("p", 101)}}); !errors.Is(err, ErrTableFull) || !strings.Contains(err.Error(), `trait "plan"`) {
		t.Fatalf("trait: %v", err)
	}
	if c := tab.Compact(); c.Live() != 11 {
		t.Fatalf("compact live %d", c.Live())
	}
}

// Build and Compact leave no spare capacity worth keeping and no lookup map
// on near-unique dictionaries.
func TestBuildAndCompactTrim(t *testing.T) {
	const n = 12_000
	b := NewTableBuilder()
	for i := range n {
		p := &Profile{ID: fmt.Sprintf("p%d", i), Traits: map[string]any{"email": fmt.Sprintf("u%d@example.com", i), "plan": []string{"free", "pro"}[i%2]},
			Events: map[string]EventStats{"E": {Count: 1, Recent: []Occurrence{{Unix: 1}}}}}
		if err := b.Append(p); err != nil {
			t.Fatal(err)
		}
	}
	tab := b.Build()
	_ = tab.Upsert(&Profile{ID: "p1", Traits: map[string]any{"email": "x"}})
	c := tab.Compact()
	for name, tt := range map[string]*Table{"build": tab, "compact": c} {
		if tt.traits["email"].dictIdx != nil || tt.traits["plan"].dictIdx == nil {
			t.Errorf("%s: want no lookup map for email, a map for plan", name)
		}
	}
	for what, s := range map[string][2]int{
		"ids":         {len(c.ids), cap(c.ids)},
		"codes":       {len(c.traits["email"].codes), cap(c.traits["email"].codes)},
		"dict":        {len(c.traits["email"].dict.buf), cap(c.traits["email"].dict.buf)},
		"event count": {len(c.events["E"].count), cap(c.events["E"].count)},
		"event unix":  {len(c.events["E"].unix), cap(c.events["E"].unix)},
	} {
		if s[1]-s[0] > s[0]/64 {
			t.Errorf("%s: len %d cap %d", what, s[0], s[1])
		}
	}
}

// Counts outside uint32 (negative or huge) read back exactly, in both
// evaluation paths.
func TestWideEventCounts(t *testing.T) {
	counts := []int64{-2, 0, 5, math.MaxUint32 - 1, math.MaxUint32, 1 << 32, math.MaxInt64}
	b := NewTableBuilder()
	for i, n := range counts {
		p := &Profile{ID: fmt.Sprint(i), Events: map[string]EventStats{"W": {
			Count: n, Last: testNow.Add(-day), Sums: map[string]float64{"v": float64(i)},
			Recent: []Occurrence{{Unix: testNow.Add(-day).Unix(), Values: map[string]float64{"v": float64(i)}}},
		}}}
		if err := b.Append(p); err != nil {
			t.Fatal(err)
		}
	}
	tab := b.Build()
	for i, n := range counts {
		if got := tab.Row(i).Events["W"].Count; got != n {
			t.Errorf("row %d: count %d, want %d", i, got, n)
		}
	}
	for src, want := range map[string]int{
		`event_count("W") > 3`:                                5,
		`event_count("W") == -2`:                              1,
		`event_count("W") >= 4294967296`:                      2,
		`event_count("W") == 4294967295`:                      1,
		`has_event("W")`:                                      5,
		`event_count("W", "30d") == 1`:                        6, // from the occurrence, except row 1 (count 0)
		`days_since(last_event("W")) < 2`:                     5, // count > 0 only
		`sum("W", "v") > 0`:                                   5, // count != 0 and v > 0
		`sum("W", "v", "2w") >= 0 && sum("W", "v", "2w") < 1`: 2,
	} {
		checkCountBothPaths(t, tab, src, want)
	}
}

// checkCountBothPaths runs src through the planner and through the VM and
// checks that both match want rows.
func checkCountBothPaths(t *testing.T, tab *Table, src string, want int) {
	t.Helper()
	r := mustCompile(t, src)
	for _, mode := range []scanMode{modePlanned, modeVM} {
		res, err := r.scanMode(context.Background(), tab, EvalOptions{Now: testNow}, nil, mode)
		if err != nil {
			t.Fatal(err)
		}
		if res.Count != want {
			t.Errorf("%s (mode %d): %d matches, want %d", src, mode, res.Count, want)
		}
	}
}
