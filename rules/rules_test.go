package rules

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func ago(d time.Duration) time.Time { return testNow.Add(-d) }

const day = 24 * time.Hour

// smallTable: three hand-made profiles.
func smallTable(t *testing.T) *Table {
	t.Helper()
	b := NewTableBuilder()
	add := func(p *Profile) {
		if err := b.Append(p); err != nil {
			t.Fatal(err)
		}
	}
	add(&Profile{
		ID:         "alice",
		Traits:     map[string]any{"plan": "pro", "age": int64(41), "code": "12", "vip": true},
		Identities: map[string][]string{"email": {"alice@x.com"}, "user_id": {"u1"}},
		FirstSeen:  ago(100 * day), LastSeen: ago(2 * day),
		Events: map[string]EventStats{
			"Order Completed": {Count: 3, First: ago(90 * day), Last: ago(5 * day),
				Sums: map[string]float64{"revenue": 300},
				Recent: []Occurrence{
					{Unix: ago(90 * day).Unix(), Values: map[string]float64{"revenue": 100}},
					{Unix: ago(20 * day).Unix(), Values: map[string]float64{"revenue": 120}},
					{Unix: ago(5 * day).Unix(), Values: map[string]float64{"revenue": 80}},
				}},
		},
		Consent: map[string]bool{"email_marketing": true},
	})
	add(&Profile{
		ID:        "bob",
		Traits:    map[string]any{"plan": "free", "age": 25.0, "code": "x"},
		FirstSeen: ago(10 * day), LastSeen: ago(1 * day),
		Events: map[string]EventStats{
			// 5 events, only the last 2 retained, the first 400 days ago.
			"Page Viewed": {Count: 5, First: ago(400 * day), Last: ago(time.Hour),
				Recent: []Occurrence{{Unix: ago(3 * day).Unix()}, {Unix: ago(time.Hour).Unix()}}},
		},
		Consent: map[string]bool{"email_marketing": false},
	})
	add(&Profile{ID: "carol", Traits: map[string]any{"plan": "pro"}, Suppressed: true,
		Consent: map[string]bool{"email_marketing": true}})
	return b.Build()
}

func matchIDs(t *testing.T, tab *Table, src string, opts EvalOptions) []string {
	t.Helper()
	r := mustCompile(t, src)
	if opts.Now.IsZero() {
		opts.Now = testNow
	}
	res, err := r.Eval(context.Background(), tab, opts)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	var ids []string
	for _, m := range res.Matches {
		ids = append(ids, tab.ID(int(m)))
	}
	return ids
}

func TestFunctions(t *testing.T) {
	tab := smallTable(t)
	cases := []struct {
		src  string
		want string
	}{
		{`traits.plan == "pro"`, "alice"}, // carol is suppressed
		{`traits.age > 30`, "alice"},
		{`traits.age < 30`, "bob"},
		{`traits.missing > 3 || traits.missing == "x"`, ""},
		{`traits.missing == nil`, "alice,bob"},
		{`traits.plan != "pro"`, "bob"},
		{`trait("plan") in ["free", "enterprise"]`, "bob"},
		{`traits.vip`, "alice"},
		{`!traits.vip`, "bob"},
		{`event_count("Order Completed") == 3`, "alice"},
		{`event_count("Order Completed", "30d") == 2`, "alice"},
		{`event_count("Order Completed", "1w") == 1`, "alice"},
		{`event_count("Page Viewed", "90m") == 1`, "bob"},
		{`event_count("Page Viewed", "2w") == 2`, "bob"},
		{`event_count("Page Viewed", "500d") == 5`, "bob"}, // window reaches past First: all events
		{`has_event("Order Completed", "12h")`, ""},
		{`has_event("Page Viewed", "12h")`, "bob"},
		{`has_event("Nope")`, ""},
		{`sum("Order Completed", "revenue") == 300`, "alice"},
		{`sum("Order Completed", "revenue", "30d") == 200`, "alice"},
		{`sum("Order Completed", "nope") == 0`, "alice,bob"},
		{`last_event("Nope") == date("0001-01-01T00:00:00Z")`, "alice,bob"},
		{`last_event("Order Completed") > now() - duration("144h")`, "alice"},
		{`days_since(last_event("Order Completed")) >= 5 && days_since(last_event("Order Completed")) < 5.01`, "alice"},
		{`days_since(last_event("Nope")) > 1e9`, "alice,bob"},
		{`days_since(first_seen) > 50`, "alice"},
		{`days_since(last_seen) < 1.5`, "bob"},
		{`consented("email_marketing")`, "alice"},
		{`id startsWith "a" || id == "bob"`, "alice,bob"},
		{`"u1" in identities.user_id`, "alice"},
		{`now() == date("2025-06-01T12:00:00Z")`, "alice,bob"},
		{`first_seen < last_seen`, "alice,bob"},
	}
	for _, c := range cases {
		got := strings.Join(matchIDs(t, tab, c.src, EvalOptions{}), ",")
		if got != c.want {
			t.Errorf("%s: got [%s], want [%s]", c.src, got, c.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		src             string
		line, col       int
		msg, suggestion string
	}{
		{"traits.plan == \"pro\" &&\n  evnt_count(\"Order Completed\") > 1", 2, 2, "unknown name evnt_count", "event_count"},
		{`has_evnt("x")`, 1, 0, "unknown name has_evnt", "has_event"},
		{`traits.plan == "pro" && consnted("ads")`, 1, 24, "unknown name consnted", "consented"},
		{`event_count("x", "30y") > 1`, 1, 17, `bad duration "30y"`, ""},
		{`sum("Order Completed", "revenue", "d") > 1`, 1, 34, `bad duration "d"`, ""},
		{`event_count("x") + 1`, 1, 0, "must be a condition", ""},
		{`traits.plan ==`, 1, 13, "unexpected token", ""},
		{`in_segment(traits.seg)`, 1, 18, "segment name literal", ""},
	}
	for _, c := range cases {
		_, err := Compile(c.src, CompileOptions{})
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%q: want *Error, got %v", c.src, err)
			continue
		}
		if e.Line != c.line || e.Column != c.col || !strings.Contains(e.Message, c.msg) || e.Suggestion != c.suggestion {
			t.Errorf("%q: got %d:%d %q suggestion %q", c.src, e.Line, e.Column, e.Message, e.Suggestion)
		}
	}
	_, err := Compile("traits.plan == \"pro\" &&\n  evnt_count(\"Order Completed\") > 1", CompileOptions{})
	want := "  evnt_count(\"Order Completed\") > 1\n  ^"
	if got := err.(*Error).Caret(); got != want {
		t.Errorf("Caret:\n%s\nwant\n%s", got, want)
	}
}

func TestHostileRules(t *testing.T) {
	cases := map[string]string{
		`len(1..100000000) > 0`:                                       "too large",
		`len(1..len(traits.x)) > 0`:                                   "literals",
		`all(traits.a, all(#, all(#, # > 1)))`:                        "nested 3 deep",
		`any(traits.a, any(#, map(#, # + 1) != nil))`:                 "nested 3 deep",
		`len(repeat("x", 100000000)) > 1`:                             "repeat",
		strings.Repeat("traits.a == 1 || ", 120) + "true":             "too complex",
		strings.Repeat("traits.a == 1 || ", 400) + "true":             "nodes",
		strings.Repeat("!(", 150) + "true" + strings.Repeat(")", 150): "nested too deeply",
		strings.Repeat("x", 10000):                                    "too long",
		`__lt(traits.a, 1)`:                                           "unknown name",
	}
	for src, msg := range cases {
		_, err := Compile(src, CompileOptions{})
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%.60q: got %v, want error containing %q", src, err, msg)
		}
	}
	// Two levels are fine.
	mustCompile(t, `any(traits.tags, all(traits.tags, # != nil))`)
}

func TestCancellation(t *testing.T) {
	tab := demoTable(t, 100_000)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := mustCompile(t, benchRule).Eval(ctx, tab, EvalOptions{Now: testNow})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	// Mid-run, on the slow VM path. A context that turns cancelled at its
	// n-th Err call makes this exact instead of timed: a full run looks at
	// ctx about once per cancelCheckRows rows, and once a look sees the
	// cancellation each worker stops looking (and evaluating) at once.
	r := mustCompile(t, `len(identities.email) > 0 && traits.age + 1 > 30`)
	full := &countdownCtx{Context: context.Background(), left: -1}
	if _, err := r.Eval(full, tab, EvalOptions{Now: testNow}); err != nil {
		t.Fatal(err)
	}
	if least := tab.Len() / cancelCheckRows / 2; full.Calls() < least {
		t.Fatalf("a full run looked at ctx %d times, want at least %d", full.Calls(), least)
	}
	mid := &countdownCtx{Context: context.Background(), left: 3}
	_, err = r.Eval(mid, tab, EvalOptions{Now: testNow})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	// 3 looks before the cancellation, then per worker at most one in its
	// chunk and one in its loop, and one by Eval itself.
	if got, most := mid.Calls(), 3+2*runtime.GOMAXPROCS(0)+1; got > most {
		t.Errorf("cancelled run looked at ctx %d times (a full run %d), want at most %d", got, full.Calls(), most)
	}
}

// countdownCtx reports context.Canceled from its Err once left calls have
// returned nil; left < 0 never cancels. It counts every call.
type countdownCtx struct {
	context.Context
	mu    sync.Mutex
	left  int
	calls int
}

func (c *countdownCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	switch {
	case c.left < 0:
		return nil
	case c.left == 0:
		return context.Canceled
	}
	c.left--
	return nil
}

// Calls is how many times Err was called.
func (c *countdownCtx) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

func TestRowErrors(t *testing.T) {
	tab := smallTable(t)
	r := mustCompile(t, `int(traits.code) > 5`)
	res, err := r.Eval(context.Background(), tab, EvalOptions{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if res.Count != 1 || tab.ID(int(res.Matches[0])) != "alice" {
		t.Errorf("matches %v", res.Matches)
	}
	if res.ErrorCount != 1 || len(res.Errors) != 1 || res.Errors[0].ProfileID != "bob" {
		t.Fatalf("errors %d %v", res.ErrorCount, res.Errors)
	}
	if !strings.Contains(res.Errors[0].Error(), "bob") {
		t.Errorf("error text %q", res.Errors[0].Error())
	}
	// Errors are counted beyond MaxErrors.
	tab = demoTable(t, 100_000)
	res, _ = mustCompile(t, `traits.age % 0 == 1`).Eval(context.Background(), tab, EvalOptions{Now: testNow, MaxErrors: 3})
	if len(res.Errors) != 3 || res.ErrorCount < 80000 {
		t.Errorf("kept %d of %d errors", len(res.Errors), res.ErrorCount)
	}
}

func TestUpsertDelete(t *testing.T) {
	tab := smallTable(t)
	src := `traits.plan == "pro"`
	if err := tab.Upsert(&Profile{ID: "bob", Traits: map[string]any{"plan": "pro", "age": "old"}}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(matchIDs(t, tab, src, EvalOptions{}), ","); got != "alice,bob" {
		t.Errorf("after upsert: %s", got)
	}
	// age changed type: the column falls back to []any and still answers.
	if got := strings.Join(matchIDs(t, tab, `traits.age > 30`, EvalOptions{}), ","); got != "alice" {
		t.Errorf("mixed column: %s", got)
	}
	if !tab.Delete("alice") || tab.Delete("alice") {
		t.Error("Delete result")
	}
	if got := strings.Join(matchIDs(t, tab, src, EvalOptions{}), ","); got != "bob" {
		t.Errorf("after delete: %s", got)
	}
	_ = tab.Upsert(&Profile{ID: "dave", Traits: map[string]any{"plan": "pro"}})
	res, _ := mustCompile(t, src).Eval(context.Background(), tab, EvalOptions{Now: testNow})
	if res.Total != 3 || res.Count != 2 || tab.Live() != 3 || tab.Len() != 5 {
		t.Errorf("total %d count %d live %d len %d", res.Total, res.Count, tab.Live(), tab.Len())
	}
	c := tab.Compact()
	if c.Len() != 3 {
		t.Errorf("compact len %d", c.Len())
	}
	if r, ok := c.Lookup("bob"); !ok || c.Row(r).Traits["age"] != "old" {
		t.Errorf("compact lost bob")
	}
}

func TestSegments(t *testing.T) {
	tab := smallTable(t)
	rules := map[string]*Rule{}
	def := func(name, src string) {
		r, err := Compile(src, CompileOptions{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		rules[name] = r
	}
	def("pros", `traits.plan == "pro"`)
	def("buyers", `in_segment("pros") && has_event("Order Completed")`)
	def("a", `in_segment("b")`)
	def("b", `traits.age > 1 && in_segment("c")`)
	def("c", `in_segment("a")`)
	def("self", `in_segment("self")`)
	resolve := func(n string) (*Rule, bool) { r, ok := rules[n]; return r, ok }
	got := strings.Join(matchIDs(t, tab, `in_segment("buyers") || in_segment("pros")`, EvalOptions{Segments: resolve}), ",")
	if got != "alice" {
		t.Errorf("segments: %s", got)
	}
	for _, name := range []string{"a", "self"} {
		_, err := rules[name].Eval(context.Background(), tab, EvalOptions{Now: testNow, Segments: resolve})
		if !errors.Is(err, ErrSegmentCycle) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if name := "a"; true {
		_, err := rules[name].Eval(context.Background(), tab, EvalOptions{Now: testNow, Segments: resolve})
		if err == nil || !strings.Contains(err.Error(), "a -> b -> c -> a") {
			t.Errorf("cycle path: %v", err)
		}
	}
	_, err := mustCompile(t, `in_segment("ghost")`).Eval(context.Background(), tab, EvalOptions{Now: testNow, Segments: resolve})
	if !errors.Is(err, ErrUnknownSegment) {
		t.Errorf("unknown segment: %v", err)
	}
}

func TestConsentSplitAndSuppression(t *testing.T) {
	tab := demoTable(t, 100_000)
	r := mustCompile(t, `traits.plan == "pro"`)
	res, err := r.Eval(context.Background(), tab, EvalOptions{Now: testNow, Purpose: "email_marketing", Sample: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Eligible+res.ExcludedNoConsent != res.Count || res.Eligible == 0 || res.ExcludedNoConsent == 0 {
		t.Errorf("split %d + %d != %d", res.Eligible, res.ExcludedNoConsent, res.Count)
	}
	eligible, supp := 0, 0
	for _, m := range res.Matches {
		if tab.Suppressed(int(m)) {
			t.Fatalf("suppressed row %d matched", m)
		}
		if tab.Row(int(m)).Consent["email_marketing"] {
			eligible++
		}
	}
	for i := 0; i < tab.Len(); i++ {
		if tab.Suppressed(i) {
			supp++
		}
	}
	if eligible != res.Eligible || supp != res.Suppressed || res.Total != tab.Live() {
		t.Errorf("eligible %d/%d suppressed %d/%d", eligible, res.Eligible, supp, res.Suppressed)
	}
	if len(res.Sample) != 10 || res.Sample[0] != int(res.Matches[0]) {
		t.Errorf("sample %v", res.Sample)
	}
	// Suppressed rows never match, even `true`.
	all, _ := mustCompile(t, `true`).Eval(context.Background(), tab, EvalOptions{Now: testNow})
	if all.Count != all.Total-all.Suppressed {
		t.Errorf("true matched %d of %d (%d suppressed)", all.Count, all.Total, all.Suppressed)
	}
}

func TestStreamingSample(t *testing.T) {
	tab := demoTable(t, 100_000)
	var got []int
	calls := 0
	res, err := mustCompile(t, `traits.plan == "enterprise"`).Eval(context.Background(), tab, EvalOptions{
		Now: testNow, Sample: 20, OnSample: func(rows []int) { got = rows; calls++ }})
	if err != nil || calls != 1 || len(got) != 20 {
		t.Fatalf("calls %d rows %v err %v", calls, got, err)
	}
	for i := range got {
		if got[i] != int(res.Matches[i]) {
			t.Fatalf("sample %v is not the first matches", got)
		}
	}
	// Fewer matches than Sample: called once at the end.
	calls = 0
	_, _ = mustCompile(t, `id == "p_0000007"`).Eval(context.Background(), tab, EvalOptions{
		Now: testNow, Sample: 20, OnSample: func(rows []int) { got = rows; calls++ }})
	if calls != 1 || len(got) != 1 {
		t.Errorf("calls %d rows %v", calls, got)
	}
}

func TestCatalogueAndTraitKeys(t *testing.T) {
	names := map[string]bool{}
	for _, e := range Catalogue() {
		names[e.Name] = true
		if e.Doc == "" || e.Signature == "" || e.Example == "" {
			t.Errorf("incomplete entry %+v", e)
		}
		if _, err := Compile(e.Example, CompileOptions{}); err != nil {
			t.Errorf("example %q: %v", e.Example, err)
		}
	}
	for _, n := range []string{"event_count", "has_event", "last_event", "sum", "days_since", "consented", "in_segment", "now", "trait", "traits", "identities"} {
		if !names[n] {
			t.Errorf("catalogue lacks %s", n)
		}
	}
	tab := smallTable(t)
	_ = tab.Upsert(&Profile{ID: "dan", Traits: map[string]any{"age": "n/a", "plan": "pro"}})
	keys := tab.TraitKeys()
	byKey := map[string]TraitInfo{}
	for _, k := range keys {
		byKey[k.Key] = k
	}
	plan := byKey["plan"]
	if plan.Count != 4 || plan.Top[0].Value != "pro" || plan.Top[0].Count != 3 || plan.Types[0] != "string" {
		t.Errorf("plan info %+v", plan)
	}
	age := byKey["age"]
	if age.Count != 3 || len(age.Types) != 3 || age.TypeCounts[0] != 1 {
		t.Errorf("age info %+v", age)
	}
}

// A near-unique string column keeps no lookup map once built; values that
// repeat after that (upserts) get new codes, and every predicate and count
// must still see them as equal.
func TestHighCardinalityColumnAfterBuild(t *testing.T) {
	const n = 12_000
	b := NewTableBuilder()
	for i := range n {
		p := &Profile{ID: fmt.Sprintf("p%d", i), Traits: map[string]any{"email": fmt.Sprintf("u%d@example.com", i), "plan": []string{"free", "pro"}[i%2]}}
		if err := b.Append(p); err != nil {
			t.Fatal(err)
		}
	}
	tab := b.Build()
	if tab.traits["email"].dictIdx != nil || tab.traits["plan"].dictIdx == nil {
		t.Fatal("want no lookup map for email, a map for plan")
	}
	// Two more profiles share an existing email; they get new codes.
	for _, id := range []string{"x1", "x2"} {
		if err := tab.Upsert(&Profile{ID: id, Traits: map[string]any{"email": "u7@example.com", "plan": "pro"}}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	for rule, want := range map[string]int{
		`traits.email == "u7@example.com"`:                     3,
		`traits.email in ["u7@example.com", "u8@example.com"]`: 4,
		`traits.email startsWith "u7@"`:                        3,
		`traits.email != "u7@example.com"`:                     n - 1,
		`traits.plan == "pro"`:                                 n/2 + 2,
	} {
		r, err := Compile(rule, CompileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Eval(ctx, tab, EvalOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Count != want {
			t.Errorf("%s: %d, want %d", rule, res.Count, want)
		}
	}
	for _, ti := range tab.TraitKeys() {
		if ti.Key == "email" && (len(ti.Top) == 0 || ti.Top[0].Value != "u7@example.com" || ti.Top[0].Count != 3) {
			t.Errorf("email top values %+v: u7 should lead with 3", ti.Top)
		}
	}
}
