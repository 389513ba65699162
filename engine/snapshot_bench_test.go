package engine

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

const benchRule = `traits.plan == "pro" && event_count("Order Completed", "30d") >= 2 && sum("Order Completed", "revenue") >= 100`

// BenchmarkSnapshot measures the rules snapshot and previews over a store
// loaded with the demo dataset: 100,000 people by default,
// LOUPE_BENCH_PROFILES to change it, or LOUPE_BENCH_DATA to use a data dir
// built by `loupe demo --no-tui --profiles 1000000 --data DIR` (BENCHMARKS.md
// records both; the demo's events end at that day's UTC midnight, so the
// clock is the real one there).
//
//	go test ./engine/ -run '^$' -bench Snapshot -benchmem -benchtime 10x
func BenchmarkSnapshot(b *testing.B) {
	n := 100_000
	if s := os.Getenv("LOUPE_BENCH_PROFILES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	dir, clock := b.TempDir(), func() time.Time { return snapNow }
	prebuilt := os.Getenv("LOUPE_BENCH_DATA")
	if prebuilt != "" {
		dir, clock = prebuilt, time.Now
	}
	e, err := Open(dir, Options{Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	if prebuilt == "" {
		data := demoNDJSON(b, n)
		if _, err := e.IngestReader(ctx, bytes.NewReader(data), "demo", IngestOptions{}); err != nil {
			b.Fatal(err)
		}
		demoDataMu.Lock()
		delete(demoData, n) // free the NDJSON before measuring memory
		demoDataMu.Unlock()
	} else {
		st, err := e.Stats(ctx)
		if err != nil {
			b.Fatal(err)
		}
		n = int(st.Profiles)
	}
	tab, err := e.snapshot(ctx)
	if err != nil {
		b.Fatal(err)
	}
	profiles := tab.Live()
	b.Logf("people=%d profiles=%d GOMAXPROCS=%d", n, profiles, runtime.GOMAXPROCS(0))

	b.Run(fmt.Sprintf("build/people=%d", n), func(b *testing.B) {
		for b.Loop() {
			e.invalidateSnapshot()
			if _, err := e.snapshot(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(profiles)*float64(b.N)/b.Elapsed().Seconds(), "profiles/s")
	})

	b.Run(fmt.Sprintf("memory/people=%d", n), func(b *testing.B) {
		s := e.snap()
		var perProfile, colBytes float64
		for b.Loop() {
			s.mu.Lock()
			s.table, s.rowPID, s.rowFirst, s.rowLast, s.rowCount = nil, nil, nil, nil, nil
			s.mu.Unlock()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			e.invalidateSnapshot()
			t, err := e.snapshot(ctx)
			if err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			perProfile = float64(after.HeapAlloc-before.HeapAlloc) / float64(profiles)
			colBytes = float64(t.Bytes()) / float64(profiles)
		}
		b.ReportMetric(perProfile, "heap-B/profile")
		b.ReportMetric(colBytes, "table-B/profile")
		b.ReportMetric(perProfile*float64(profiles)/(1<<20), "heap-MiB")
	})

	var count int
	b.Run(fmt.Sprintf("count/people=%d", n), func(b *testing.B) {
		for b.Loop() {
			res, err := e.Preview(ctx, benchRule, PreviewOptions{Sample: -1})
			if err != nil {
				b.Fatal(err)
			}
			count = res.Count
		}
		b.ReportMetric(float64(count), "matches")
	})

	b.Run(fmt.Sprintf("sample20/people=%d", n), func(b *testing.B) {
		var first time.Duration
		for b.Loop() {
			start := time.Now()
			var at time.Duration
			_, err := e.Preview(ctx, benchRule, PreviewOptions{Sample: 20, OnSample: func(s []ProfileSummary) {
				at = time.Since(start)
			}})
			if err != nil {
				b.Fatal(err)
			}
			first += at
		}
		b.ReportMetric(float64(first.Microseconds())/1000/float64(b.N), "ms-to-sample")
	})
}
