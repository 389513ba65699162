package rules

import (
	"context"
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
	})
}
