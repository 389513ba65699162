package rules

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

const benchRule = `traits.plan == "pro" && event_count("Order Completed", "30d") >= 2 && sum("Order Completed", "revenue") >= 100`

var benchSizes = []struct {
	name string
	n    int
}{{"100k", 100_000}, {"1M", 1_000_000}}

func BenchmarkCount3Pred(b *testing.B) {
	r := mustCompile(b, benchRule)
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			tab := demoTable(b, sz.n)
			b.ReportAllocs()
			b.ResetTimer()
			var res Result
			for b.Loop() {
				var err error
				if res, err = r.Eval(context.Background(), tab, EvalOptions{Now: testNow}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(res.Count), "matches")
			b.ReportMetric(float64(tab.Bytes())/float64(tab.Len()), "table-B/profile")
		})
	}
}

// BenchmarkFirstSample20 measures the time until OnSample delivers the first
// 20 matching rows; the callback then cancels the run, as the TUI does when
// the analyst keeps typing.
func BenchmarkFirstSample20(b *testing.B) {
	r := mustCompile(b, benchRule)
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			tab := demoTable(b, sz.n)
			b.ReportAllocs()
			b.ResetTimer()
			var toSample time.Duration
			for b.Loop() {
				ctx, cancel := context.WithCancel(context.Background())
				got := 0
				start := time.Now()
				_, err := r.Eval(ctx, tab, EvalOptions{Now: testNow, Sample: 20, OnSample: func(rows []int) {
					toSample += time.Since(start)
					got = len(rows)
					cancel()
				}})
				cancel()
				if got != 20 || err == nil {
					b.Fatalf("sample %d, err %v", got, err)
				}
			}
			b.ReportMetric(float64(toSample.Nanoseconds())/float64(b.N), "ns-to-sample")
		})
	}
}

// BenchmarkVMFallback runs the same rule through expr's VM on every row.
func BenchmarkVMFallback(b *testing.B) {
	r := mustCompile(b, benchRule)
	b.Run("1M", func(b *testing.B) {
		tab := demoTable(b, 1_000_000)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := r.scanMode(context.Background(), tab, EvalOptions{Now: testNow}, nil, modeVM); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBuildTable builds a 1M-row table from pre-generated profiles.
// Its heap figure leaves out string bytes the table shares with those
// profiles (see BenchmarkTableMemory).
func BenchmarkBuildTable(b *testing.B) {
	b.Run("1M", func(b *testing.B) {
		tab := demoTable(b, 1_000_000)
		profiles := make([]*Profile, tab.Len())
		for i := range profiles {
			profiles[i] = tab.Row(i)
		}
		runtime.GC()
		b.ReportAllocs()
		b.ResetTimer()
		var built *Table
		for b.Loop() {
			tb := NewTableBuilder()
			for _, p := range profiles {
				if err := tb.Append(p); err != nil {
					b.Fatal(err)
				}
			}
			built = tb.Build()
		}
		b.StopTimer()
		var before, after runtime.MemStats
		built = nil
		runtime.GC()
		runtime.ReadMemStats(&before)
		tb := NewTableBuilder()
		for _, p := range profiles {
			_ = tb.Append(p)
		}
		built = tb.Build()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(built.Bytes())/float64(built.Len()), "table-B/profile")
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(built.Len()), "heap-B/profile")
		runtime.KeepAlive(built)
		runtime.KeepAlive(profiles) // else the second GC frees them and the figure goes negative
	})
}

// richEventNames are the event names of richProfile; each profile has two
// to four of them.
var richEventNames = []string{"Page Viewed", "Product Viewed", "Added to Cart", "Order Completed", "Signed Up", "Email Opened", "Email Clicked", "Checkout Started", "Subscription Renewed"}

// richProfile is a profile shaped like the demo dataset as the engine sees
// it: near-unique name and email traits, four or five identities, and two
// to four of nine event names with a few retained occurrences each. Every
// string is freshly allocated, as when the engine decodes a record.
func richProfile(rng *rand.Rand, i int) *Profile {
	p := &Profile{
		ID: fmt.Sprintf("p%d", 1_000_000+i),
		Traits: map[string]any{
			"plan":       []string{"free", "starter", "pro", "enterprise"}[rng.IntN(4)],
			"country":    []string{"US", "GB", "DE", "FR", "NL", "ES", "IT", "CA"}[rng.IntN(8)],
			"name":       fmt.Sprintf("Customer Name %d", i),
			"email":      fmt.Sprintf("customer.%d@example.com", i),
			"city":       fmt.Sprintf("City %d", rng.IntN(5000)),
			"ltv":        float64(rng.IntN(100000)) / 100,
			"age":        int64(18 + rng.IntN(60)),
			"newsletter": rng.IntN(2) == 0,
		},
		Identities: map[string][]string{
			"email":        {fmt.Sprintf("customer.%d@example.com", i)},
			"user_id":      {fmt.Sprintf("u%d", i)},
			"anonymous_id": {fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<12), rng.IntN(1<<12), rng.Int64N(1<<48))},
			"device_id":    {fmt.Sprintf("dev-%016x", rng.Uint64())},
		},
		Events:  map[string]EventStats{},
		Consent: map[string]bool{"analytics": true, "email_marketing": rng.IntN(2) == 0},
	}
	if rng.IntN(2) == 0 {
		p.Identities["phone"] = []string{fmt.Sprintf("+4930%08d", rng.IntN(100_000_000))}
	}
	nowSec := testNow.Unix()
	var first, last int64 = 1 << 62, 0
	for _, k := range rng.Perm(len(richEventNames))[:2+rng.IntN(3)] {
		name := richEventNames[k]
		os := make([]Occurrence, 1+rng.IntN(4))
		for j := range os {
			os[j].Unix = nowSec - rng.Int64N(180*86400)
			if name == "Order Completed" {
				os[j].Values = map[string]float64{"revenue": float64(10 + rng.IntN(290))}
			}
		}
		p.Events[name] = statsOf(os)
		first, last = min(first, os[0].Unix), max(last, os[len(os)-1].Unix)
	}
	p.FirstSeen, p.LastSeen = time.Unix(first, 0), time.Unix(last, 0)
	return p
}

// BenchmarkTableMemory builds a 200k-row table of richProfile rows, each
// generated right before it is appended and dropped after, and reports
// Table.Bytes and the live heap the table holds, per row. Unlike
// BenchmarkBuildTable's heap figure, this one includes the bytes of the
// table's strings (IDs, dictionaries, identities).
func BenchmarkTableMemory(b *testing.B) {
	const n = 200_000
	var tableB, heapB float64
	for b.Loop() {
		b.StopTimer()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		rng := rand.New(rand.NewPCG(3, 3))
		tb := NewTableBuilder()
		for i := range n {
			if err := tb.Append(richProfile(rng, i)); err != nil {
				b.Fatal(err)
			}
		}
		t := tb.Build()
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		tableB = float64(t.Bytes()) / n
		heapB = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
		runtime.KeepAlive(t)
		b.StartTimer()
	}
	b.ReportMetric(tableB, "table-B/profile")
	b.ReportMetric(heapB, "heap-B/profile")
}
