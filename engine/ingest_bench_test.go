package engine

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"testing"

	"github.com/loupe-cdp/loupe/engine/demo"
)

var (
	demoDataMu sync.Mutex
	demoData   = map[int][]byte{}
)

// demoNDJSON generates (once per process) the demo dataset for n people.
func demoNDJSON(tb testing.TB, n int) []byte {
	demoDataMu.Lock()
	defer demoDataMu.Unlock()
	if b, ok := demoData[n]; ok {
		return b
	}
	var buf bytes.Buffer
	if _, err := demo.Generate(context.Background(), &buf, demo.Options{Profiles: n, Seed: 1}); err != nil {
		tb.Fatal(err)
	}
	demoData[n] = buf.Bytes()
	return buf.Bytes()
}

// BenchmarkIngestDemo ingests the demo dataset end to end (parse, identity
// resolution, profiles, Badger) into a fresh data dir. Set
// LOUPE_BENCH_PROFILES to change the size (default 20000; BENCHMARKS.md
// records 1,000,000).
func BenchmarkIngestDemo(b *testing.B) {
	n := 20000
	if s := os.Getenv("LOUPE_BENCH_PROFILES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	data := demoNDJSON(b, n)
	b.Run(fmt.Sprintf("people=%d", n), func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		var events int64
		for b.Loop() {
			b.StopTimer()
			e, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			opts := heapProfileAtHalf(b, int64(len(data)))
			opts.SizeHint = int64(len(data)) // as `loupe demo` and a file ingest know it
			st, err := e.IngestReader(context.Background(), bytes.NewReader(data), "demo", opts)
			if err != nil {
				b.Fatal(err)
			}
			events = st.Ingested
			b.StopTimer()
			e.Close()
			b.StartTimer()
		}
		b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// heapProfileAtHalf returns options that, when LOUPE_BENCH_HEAPPROFILE names
// a file, write a heap profile there once half the input is read: the
// writer's maps and caches are live then, as they are not after the ingest.
func heapProfileAtHalf(b *testing.B, size int64) IngestOptions {
	path := os.Getenv("LOUPE_BENCH_HEAPPROFILE")
	if path == "" {
		return IngestOptions{}
	}
	done := false
	return IngestOptions{Progress: func(p IngestProgress) {
		if done || p.Bytes < size/2 {
			return
		}
		done = true
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		runtime.GC()
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Fatal(err)
		}
	}}
}
