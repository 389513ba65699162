package rules

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// messyTable has mixed-type, missing, array and map traits, truncated
// Recent lists, deleted and suppressed rows.
func messyTable(t testing.TB, n int) *Table {
	rng := rand.New(rand.NewPCG(7, 7))
	strs := []string{"pro", "free", "Pro", "", "enterprise", "a@x.com", "b@y.org", "42", "abc"}
	b := NewTableBuilder()
	for i := 0; i < n; i++ {
		p := demoProfile(rng, i)
		switch rng.IntN(6) {
		case 0:
			p.Traits["mixed"] = strs[rng.IntN(len(strs))]
		case 1:
			p.Traits["mixed"] = int64(rng.IntN(50))
		case 2:
			p.Traits["mixed"] = float64(rng.IntN(50)) + 0.5
		case 3:
			p.Traits["mixed"] = rng.IntN(2) == 0
		case 4:
			p.Traits["mixed"] = nil
		}
		if rng.IntN(3) == 0 {
			p.Traits["email"] = strs[rng.IntN(len(strs))]
		}
		if rng.IntN(2) == 0 {
			p.Traits["score"] = float64(rng.IntN(100))
		}
		if rng.IntN(4) == 0 {
			p.Traits["tags"] = []any{"a", "b", strs[rng.IntN(len(strs))]}
		}
		if rng.IntN(5) == 0 {
			p.Traits["code"] = []string{"12", "7", "x"}[rng.IntN(3)]
		}
		if rng.IntN(8) == 0 {
			p.Traits["addr"] = map[string]any{"city": "Paris"}
		}
		if rng.IntN(4) == 0 {
			p.Traits["flag"] = rng.IntN(2) == 0
		}
		if rng.IntN(5) == 0 { // the engine kept only the latest occurrences
			s := p.Events["Page Viewed"]
			if len(s.Recent) > 1 {
				s.Count += int64(rng.IntN(5))
				s.First = s.First.Add(-time.Duration(rng.IntN(400)) * 24 * time.Hour)
				s.Recent = s.Recent[1:]
				p.Events["Page Viewed"] = s
			}
		}
		if err := b.Append(p); err != nil {
			t.Fatal(err)
		}
	}
	tab := b.Build()
	for i := 0; i < n/20; i++ {
		tab.Delete(fmt.Sprintf("p_%07d", rng.IntN(n)))
	}
	return tab
}

var (
	diffKeys    = []string{"plan", "country", "age", "ltv", "vip", "mixed", "email", "score", "tags", "flag", "code", "nokey"}
	diffLits    = []string{`"pro"`, `"free"`, `"US"`, `""`, `"a@x.com"`, `30`, `0`, `-1`, `42.5`, `12.5`, `true`, `false`, `nil`, `"42"`, `25`}
	diffOps     = []string{"==", "!=", "<", "<=", ">", ">="}
	diffStrOps  = []string{"startsWith", "endsWith", "contains", "matches"}
	diffWindows = []string{"", `, "30d"`, `, "12h"`, `, "2w"`, `, "90m"`, `, "400d"`}
)

func genAtom(rng *rand.Rand) string {
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	key := pick(diffKeys)
	ev := fmt.Sprintf("%q", pick(append(eventNames, "Nope")))
	switch rng.IntN(22) {
	case 0, 1, 2:
		return fmt.Sprintf("traits.%s %s %s", key, pick(diffOps), pick(diffLits))
	case 3:
		return fmt.Sprintf("%s %s trait(%q)", pick(diffLits), pick(diffOps), key)
	case 4:
		return fmt.Sprintf("traits[%q] in [%s, %s, %s]", key, pick(diffLits), pick(diffLits), pick(diffLits))
	case 5:
		return fmt.Sprintf("traits.%s %s %s", key, pick(diffStrOps), pick([]string{`"p"`, `"com"`, `"@"`, `"^[a-z]+$"`, `""`}))
	case 6:
		return "traits." + key
	case 7, 8:
		return fmt.Sprintf("event_count(%s%s) %s %d", ev, pick(diffWindows), pick(diffOps), rng.IntN(4))
	case 9:
		return fmt.Sprintf("has_event(%s%s)", ev, pick(diffWindows))
	case 10:
		return fmt.Sprintf("sum(%s, %q%s) %s %d", ev, pick([]string{"revenue", "nope"}), pick(diffWindows), pick(diffOps), rng.IntN(400))
	case 11:
		return fmt.Sprintf("days_since(%s) %s %d", pick([]string{"first_seen", "last_seen", `last_event("Order Completed")`, `last_event("Nope")`}), pick(diffOps), rng.IntN(200))
	case 12:
		return fmt.Sprintf("consented(%q)", pick(append(purposes, "nope")))
	case 13:
		return fmt.Sprintf("id %s %q", pick(append(diffOps, "startsWith", "endsWith", "contains")), pick([]string{"p_0000", "p_00001", "5", "p_0000100"}))
	case 14:
		return `in_segment("pros")`
	// shapes the planner leaves to the VM
	case 15:
		return "len(identities.email) > 0 && " + pick([]string{`"user_id" in identities`, `len(identities) > 1`})
	case 16:
		return fmt.Sprintf("any(traits.tags, # == %s)", pick(diffLits))
	case 17:
		return "traits.age + 1 > 30"
	case 18:
		return "int(traits.code) > 10"
	case 19:
		return `last_seen > now() - duration("720h")`
	case 20:
		return "traits.score == traits.ltv"
	default:
		return fmt.Sprintf("(traits.%s ?? 0) > 10", pick([]string{"age", "score", "mixed"}))
	}
}

func genRule(rng *rand.Rand, depth int) string {
	if depth == 0 || rng.IntN(3) == 0 {
		a := genAtom(rng)
		if rng.IntN(5) == 0 {
			return "!(" + a + ")"
		}
		return a
	}
	op := []string{" && ", " || ", " and ", " or "}[rng.IntN(4)]
	s := genRule(rng, depth-1) + op + genRule(rng, depth-1)
	if rng.IntN(3) == 0 {
		return "not (" + s + ")"
	}
	return "(" + s + ")"
}

func errRows(res Result) []string {
	var ids []string
	for _, e := range res.Errors {
		ids = append(ids, e.ProfileID)
	}
	slices.Sort(ids)
	return ids
}

// TestDifferential checks that the planned (columnar) path and expr's VM
// agree row for row, errors included, on generated and hand-written rules.
func TestDifferential(t *testing.T) {
	tab := messyTable(t, 3000)
	pros := mustCompile(t, `traits.plan == "pro"`)
	segments := func(name string) (*Rule, bool) { return pros, name == "pros" }
	hand := []string{
		`traits.plan == "pro" && event_count("Order Completed", "30d") >= 2 && sum("Order Completed", "revenue") >= 100`,
		`traits.age > 30`, `traits.age <= 30.5`, `traits.mixed > 10`, `traits.mixed == 1`, `traits.mixed == "pro"`,
		`traits.mixed != nil`, `traits.nokey == nil`, `traits.vip`, `!traits.vip`, `traits.flag == false`,
		`traits.mixed in [1, "pro", true, nil]`, `traits.age in [30, 31.0, "x"]`, `traits.plan in ["pro", "enterprise"]`,
		`traits.email endsWith ".com"`, `traits.mixed contains "p"`, `trait("plan") matches "^p"`,
		`has_event("Page Viewed", "30d") && !has_event("Order Completed")`,
		`days_since(last_event("Order Completed")) > 60`, `days_since(last_event("Nope")) > 60`,
		`sum("Order Completed", "revenue", "2w") > 0`, `event_count("Page Viewed", "90d") == 1`,
		`consented("email_marketing") || traits.vip`, `id startsWith "p_00001"`, `id in ["p_0000001", "p_0000002"]`,
		`in_segment("pros") && consented("analytics")`, `int(traits.code) > 5 || traits.plan == "pro"`,
		`traits.plan == "pro" and (traits.age + 1) > 40`, `traits.tags != nil && "a" in traits.tags`,
		`traits.addr.city == "Paris"`, `traits.age > 30 ? traits.plan == "pro" : traits.vip`,
		`true`, `false`, `traits.ltv >= 500 && traits.ltv < 600.25`, `30 < traits.age`,
	}
	rng := rand.New(rand.NewPCG(42, 1))
	var rules []string
	rules = append(rules, hand...)
	for i := 0; i < 400; i++ {
		rules = append(rules, genRule(rng, 3))
	}
	ctx := context.Background()
	planned, skipped := 0, 0
	for i, src := range rules {
		r, err := Compile(src, CompileOptions{})
		if err != nil {
			if i < len(hand) {
				t.Fatalf("compile %q: %v", src, err)
			}
			skipped++ // e.g. `traits.age < nil` is a type error in expr
			continue
		}
		segs := map[string]*bitmap{}
		opts := EvalOptions{Now: testNow, Segments: segments, MaxErrors: 1 << 20, Workers: 2}
		if err := resolveSegments(ctx, tab, r, opts, segs, nil); err != nil {
			t.Fatal(err)
		}
		a, err := r.scanMode(ctx, tab, opts, segs, modePlanned)
		if err != nil {
			t.Fatalf("%q planned: %v", src, err)
		}
		b, err := r.scanMode(ctx, tab, opts, segs, modeVM)
		if err != nil {
			t.Fatalf("%q vm: %v", src, err)
		}
		if !strings.HasPrefix(a.Plan, "vm:") {
			planned++
		}
		if !slices.Equal(a.Matches, b.Matches) {
			t.Errorf("%q (%s): planned %d matches, vm %d", src, a.Plan, a.Count, b.Count)
			for _, m := range a.Matches {
				if _, ok := slices.BinarySearch(b.Matches, m); !ok {
					t.Logf("  row %d only planned: %v", m, tab.Traits(int(m)))
					break
				}
			}
			for _, m := range b.Matches {
				if _, ok := slices.BinarySearch(a.Matches, m); !ok {
					t.Logf("  row %d only vm: %v", m, tab.Traits(int(m)))
					break
				}
			}
		}
		if !slices.Equal(errRows(a), errRows(b)) || a.ErrorCount != b.ErrorCount {
			t.Errorf("%q: planned %d errors, vm %d", src, a.ErrorCount, b.ErrorCount)
		}
	}
	t.Logf("%d rules (%d generated ones did not compile), %d with a columnar plan", len(rules), skipped, planned)
}
