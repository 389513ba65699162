package collector

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/loupe-cdp/loupe/engine"
)

// BenchmarkCollector posts /v1/batch requests of 50 track events from
// parallel clients to a collector over a real engine; events/s is the
// figure for BENCHMARKS.md.
func BenchmarkCollector(b *testing.B) {
	eng, err := engine.Open(b.TempDir(), engine.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	s := New(eng, Options{WriteKeys: []string{"wk"}})
	srv := httptest.NewServer(s.Handler())
	defer func() { srv.Close(); s.Close() }()
	const per = 50
	var seq atomic.Int64
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		client := &http.Client{}
		for pb.Next() {
			var sb strings.Builder
			sb.WriteString(`{"batch":[`)
			for j := 0; j < per; j++ {
				k := seq.Add(1)
				if j > 0 {
					sb.WriteByte(',')
				}
				fmt.Fprintf(&sb, `{"type":"track","messageId":"b-%d","userId":"u%d","event":"Product Viewed","properties":{"sku":"sku-%d","price":19.99},"context":{"ip":"10.0.0.1","library":{"name":"bench"}},"timestamp":"2026-05-01T00:00:00Z"}`, k, k%5000, k%300)
			}
			sb.WriteString(`]}`)
			req, _ := http.NewRequest("POST", srv.URL+"/v1/batch", strings.NewReader(sb.String()))
			req.SetBasicAuth("wk", "")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(seq.Load())/b.Elapsed().Seconds(), "events/s")
}
