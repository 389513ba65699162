package rules

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

var (
	eventNames = []string{"Page Viewed", "Product Viewed", "Added to Cart", "Order Completed", "Signed Up", "Email Opened"}
	purposes   = []string{"analytics", "email_marketing", "sms_marketing", "advertising", "personalization", "sale_of_data"}
	countries  = []string{"US", "GB", "DE", "FR", "NL", "ES", "IT", "CA", "AU", "JP"}
)

func pickPlan(rng *rand.Rand) string {
	switch x := rng.IntN(100); {
	case x < 45:
		return "free"
	case x < 70:
		return "starter"
	case x < 90:
		return "pro"
	default:
		return "enterprise"
	}
}

// demoProfile builds one profile shaped like the demo dataset: plan with
// pro ~20%, ~35% with orders, 5-8 events over 180 days, email/user_id
// identities, consent for 6 purposes.
func demoProfile(rng *rand.Rand, i int) *Profile {
	p := &Profile{
		ID: fmt.Sprintf("p_%07d", i),
		Traits: map[string]any{
			"plan":    pickPlan(rng),
			"country": countries[rng.IntN(len(countries))],
			"ltv":     float64(rng.IntN(100000)) / 100,
		},
		Identities: map[string][]string{"email": {fmt.Sprintf("user%d@example.com", i)}},
		Events:     map[string]EventStats{},
		Consent:    map[string]bool{},
		Suppressed: rng.IntN(200) == 0,
	}
	if rng.IntN(10) != 0 {
		p.Traits["age"] = int64(18 + rng.IntN(60))
	}
	if rng.IntN(20) == 0 {
		p.Traits["vip"] = true
	}
	if rng.IntN(10) < 7 {
		p.Identities["user_id"] = []string{fmt.Sprintf("u%d", i)}
	}
	for j, pur := range purposes {
		p.Consent[pur] = rng.IntN(10) < 8-j
	}
	nowSec := testNow.Unix()
	occ := map[string][]Occurrence{}
	n := 5 + rng.IntN(4)
	ordered := rng.IntN(100) < 35
	for k := 0; k < n; k++ {
		name := eventNames[rng.IntN(3)]
		if k == 0 && ordered {
			name = "Order Completed"
		} else if k%4 == 3 {
			name = eventNames[4+rng.IntN(2)]
		}
		o := Occurrence{Unix: nowSec - rng.Int64N(180*86400)}
		if name == "Order Completed" {
			o.Values = map[string]float64{"revenue": float64(10 + rng.IntN(290))}
		}
		occ[name] = append(occ[name], o)
	}
	if ordered && rng.IntN(2) == 0 {
		occ["Order Completed"] = append(occ["Order Completed"], Occurrence{Unix: nowSec - rng.Int64N(40*86400), Values: map[string]float64{"revenue": float64(10 + rng.IntN(290))}})
	}
	var first, last int64 = 1 << 62, 0
	for name, os := range occ {
		p.Events[name] = statsOf(os)
		first, last = min(first, os[0].Unix), max(last, os[len(os)-1].Unix)
	}
	p.FirstSeen, p.LastSeen = time.Unix(first, 0), time.Unix(last, 0)
	return p
}

// statsOf sorts os by time and returns the event stats they make: count,
// first, last, and the sums of each property.
func statsOf(os []Occurrence) EventStats {
	sortOcc(os)
	s := EventStats{Count: int64(len(os)), First: time.Unix(os[0].Unix, 0), Last: time.Unix(os[len(os)-1].Unix, 0), Recent: os}
	for _, o := range os {
		for k, v := range o.Values {
			if s.Sums == nil {
				s.Sums = map[string]float64{}
			}
			s.Sums[k] += v
		}
	}
	return s
}

func sortOcc(os []Occurrence) {
	for i := 1; i < len(os); i++ {
		for j := i; j > 0 && os[j].Unix < os[j-1].Unix; j-- {
			os[j], os[j-1] = os[j-1], os[j]
		}
	}
}

func buildDemo(n int) *Table {
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	b := NewTableBuilder()
	for i := 0; i < n; i++ {
		if err := b.Append(demoProfile(rng, i)); err != nil {
			panic(err)
		}
	}
	return b.Build()
}

var (
	demoMu     sync.Mutex
	demoTables = map[int]*Table{}
)

// demoTable builds the demo table of n rows once per process.
func demoTable(tb testing.TB, n int) *Table {
	tb.Helper()
	demoMu.Lock()
	defer demoMu.Unlock()
	if t, ok := demoTables[n]; ok {
		return t
	}
	t := buildDemo(n)
	demoTables[n] = t
	runtime.GC() // do not bill the generator's garbage to the first benchmark
	return t
}

func mustCompile(t testing.TB, src string) *Rule {
	t.Helper()
	r, err := Compile(src, CompileOptions{})
	if err != nil {
		t.Fatalf("compile %q: %v", src, err)
	}
	return r
}
