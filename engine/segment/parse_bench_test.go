package segment

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"
)

func benchTrack(b *testing.B) []byte {
	b.Helper()
	data, err := os.ReadFile("testdata/track-900.json")
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkParse measures one compact ~900-byte track event (analytics.js
// shape with context.device, context.page and a products array).
func BenchmarkParse(b *testing.B) {
	data := benchTrack(b)
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkParseDerivedID measures the slow path: no messageId.
func BenchmarkParseDerivedID(b *testing.B) {
	data := bytes.Replace(benchTrack(b), []byte(`"messageId":"022bb90c-bbac-11e4-8dfc-aa07a5b093db",`), nil, 1)
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseConsent measures a page view from analytics.js with a
// banner decision in context.consent, as four events in ten of the demo.
func BenchmarkParseConsent(b *testing.B) {
	data := []byte(`{"type":"page","messageId":"ajs-next-1733400000000-4f1c","anonymousId":"542f216e-3592-4bff-bed8-6bf8e6a7f5f5","userId":"u000123","timestamp":"2026-06-08T00:56:29.007Z","name":"Pricing","properties":{"path":"/pricing","title":"Pricing","url":"https://shop.example.com/pricing","referrer":"https://www.google.com/"},"context":{"ip":"203.0.101.12","userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15","locale":"en-US","library":{"name":"analytics.js","version":"next-1.70.0"},"page":{"path":"/pricing","title":"Pricing","url":"https://shop.example.com/pricing","referrer":"https://www.google.com/"},"consent":{"categoryPreferences":{"Advertising":false,"Analytics":true,"Functional":true,"Marketing":false},"jurisdiction":"FR","policyVersion":"2026-03"}}}`)
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseParallel runs Parse on every core (GOMAXPROCS).
func BenchmarkParseParallel(b *testing.B) {
	data := benchTrack(b)
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := Parse(data, now); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkValidJSON compares Parse's validator with encoding/json.Valid,
// the reference FuzzValidJSON holds it to, on the track event.
func BenchmarkValidJSON(b *testing.B) {
	data := benchTrack(b)
	for _, v := range []struct {
		name  string
		valid func([]byte) bool
	}{{"validJSON", validJSON}, {"encoding-json", json.Valid}} {
		b.Run(v.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if !v.valid(data) {
					b.Fatal("rejected")
				}
			}
		})
	}
}
