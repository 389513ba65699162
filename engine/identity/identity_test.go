package identity

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	for _, c := range []struct{ typ, in, want string }{
		{Email, "  Ann.Lee@Example.COM ", "ann.lee@example.com"},
		{Phone, "(415) 555-0100", "4155550100"},
		{Phone, "+1 415-555-0100", "+14155550100"},
		{Phone, " +44 (0)20 7946 0958", "+4402079460958"},
		{Phone, "call me", ""},
		{UserID, " u1 ", "u1"},
	} {
		if got := Normalize(c.typ, c.in); got != c.want {
			t.Errorf("Normalize(%s, %q) = %q, want %q", c.typ, c.in, got, c.want)
		}
	}
}

func TestBlocked(t *testing.T) {
	r := DefaultRules()
	if err := r.Compile(); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"", "null", "NULL", "undefined", "0", "-1", "00000000-0000-0000-0000-000000000000", "[object Object]", "Anonymous", "test@test.com", "nan"} {
		if !r.IsBlocked(v) {
			t.Errorf("%q should be blocked", v)
		}
	}
	for _, v := range []string{"u1", "ann@example.com", "+14155550100", "10"} {
		if r.IsBlocked(v) {
			t.Errorf("%q should not be blocked", v)
		}
	}
	r.BlockedPatterns = append(r.BlockedPatterns, `^tmp-`)
	if err := r.Compile(); err != nil || !r.IsBlocked("tmp-123") {
		t.Fatal("user pattern not applied")
	}
	r.BlockedPatterns = []string{"("}
	if err := r.Compile(); err == nil {
		t.Fatal("bad pattern accepted")
	}
}

// graph is a tiny in-memory Owner for tests and benchmarks.
type graph struct {
	owner map[ID]uint64
	count map[uint64]map[string]int
}

func newGraph() *graph { return &graph{owner: map[ID]uint64{}, count: map[uint64]map[string]int{}} }

func (g *graph) OwnerOf(id ID) uint64           { return g.owner[id] }
func (g *graph) CountOf(p uint64, t string) int { return g.count[p][t] }
func (g *graph) add(p uint64, ids ...ID) {
	if g.count[p] == nil {
		g.count[p] = map[string]int{}
	}
	for _, id := range ids {
		g.owner[id] = p
		g.count[p][id.Type]++
	}
}

func TestDecideRefusesSecondUserID(t *testing.T) {
	r := DefaultRules()
	g := newGraph()
	g.add(1, ID{UserID, "u1"}, ID{DeviceID, "d1"}, ID{AnonymousID, "a1"})
	d := r.Decide([]ID{{AnonymousID, "a1"}, {DeviceID, "d1"}, {UserID, "u2"}}, g)
	if len(d.Profiles) != 0 || len(d.Kept) != 1 || d.Kept[0] != (ID{UserID, "u2"}) {
		t.Fatalf("decision %+v", d)
	}
	if len(d.Dropped) != 2 || d.Dropped[0].Type != AnonymousID || d.Reason == "" {
		t.Fatalf("drops %+v reason %q", d.Dropped, d.Reason)
	}
	if !slices.Equal(d.Owners, []uint64{0}) {
		t.Fatalf("owners %v, want [0] for the new u2", d.Owners)
	}
	// Identifiers joining a profile carry its id, aligned with Kept.
	d = r.Decide([]ID{{AnonymousID, "a2"}, {DeviceID, "d1"}}, g)
	if len(d.Kept) != 2 || d.Kept[0] != (ID{DeviceID, "d1"}) || !slices.Equal(d.Owners, []uint64{1, 0}) {
		t.Fatalf("kept %v owners %v, want [device_id:d1 anonymous_id:a2] [1 0]", d.Kept, d.Owners)
	}
}

func TestDecideMergesWithinLimits(t *testing.T) {
	r := DefaultRules()
	g := newGraph()
	g.add(1, ID{AnonymousID, "a1"})
	g.add(2, ID{UserID, "u1"}, ID{Email, "e@x"})
	d := r.Decide([]ID{{UserID, "u1"}, {AnonymousID, "a1"}}, g)
	if len(d.Dropped) != 0 || len(d.Profiles) != 2 || d.Profiles[0] != 1 {
		t.Fatalf("decision %+v", d)
	}
}

func TestDecideEmailLimit(t *testing.T) {
	r := DefaultRules()
	g := newGraph()
	for i := range 5 {
		g.add(1, ID{Email, "e" + strconv.Itoa(i)})
	}
	g.add(1, ID{UserID, "u1"})
	d := r.Decide([]ID{{UserID, "u1"}, {Email, "e9"}}, g)
	if len(d.Dropped) != 1 || d.Dropped[0].Value != "e9" || len(d.Profiles) != 1 {
		t.Fatalf("sixth email: %+v", d)
	}
}

// BenchmarkResolve measures identity resolution alone, in memory: events
// carrying an anonymous id, a device id and (half the time) a user id and
// an email, over a growing graph. links/s counts identifiers resolved.
func BenchmarkResolve(b *testing.B) {
	r := DefaultRules()
	r.Compile()
	g := newGraph()
	next := uint64(0)
	ids := make([]ID, 0, 4)
	links := 0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		person := strconv.Itoa(i / 4)
		ids = ids[:0]
		ids = append(ids, ID{AnonymousID, "a" + person}, ID{DeviceID, "d" + person})
		if i%2 == 0 {
			ids = append(ids, ID{UserID, "u" + person}, ID{Email, person + "@x"})
		}
		d := r.Decide(ids, g)
		p := uint64(0)
		if len(d.Profiles) > 0 {
			p = d.Profiles[0]
		} else {
			next++
			p = next
		}
		for _, id := range d.Kept {
			if g.owner[id] == 0 {
				g.add(p, id)
			}
		}
		links += len(ids)
	}
	b.ReportMetric(float64(links)/b.Elapsed().Seconds(), "links/s")
}

// TestBlockedValuesOfEveryLength checks the blocklist's case-insensitive
// match on each of its paths: short ASCII values lower-cased on the stack,
// values longer than the stack buffer, values longer than every blocked
// value, and values with non-ASCII bytes, which strings.ToLower handles.
func TestBlockedValuesOfEveryLength(t *testing.T) {
	long := strings.Repeat("placeholder-", 7) // 84 bytes, past the stack buffer
	r := DefaultRules()
	r.Blocked = append(r.Blocked, "Ünknown", long)
	if err := r.Compile(); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"TEST@EXAMPLE.COM", "Not_Authenticated", "ÜNKNOWN", "ünknown", strings.ToUpper(long), long} {
		if !r.IsBlocked(v) {
			t.Errorf("%q should be blocked", v)
		}
	}
	for _, v := range []string{"TEST@EXAMPLE.CO", "ÜNKNOWNS", long + "x", strings.ToUpper(long)[1:], "9f79a679-d744-4c88-95ad-d854b8848aac"} {
		if r.IsBlocked(v) {
			t.Errorf("%q should not be blocked", v)
		}
	}
}
