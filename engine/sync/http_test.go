package sync

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"
)

func track(i int) string {
	return fmt.Sprintf(`{"type":"track","messageId":"m%d","userId":"u%d","event":"E","timestamp":"2026-01-01T00:00:%02dZ"}`, i, i%7, i%60)
}

type sleeps struct {
	mu sync0
	d  []time.Duration
}

type sync0 = gosync.Mutex

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func httpRunner(st Store, sl *sleeps) *Runner {
	return &Runner{Store: st, BackoffBase: time.Millisecond, BackoffMax: 4 * time.Millisecond, Sleep: sl.sleep}
}

func httpSources(url, extra string) string {
	return `
sources:
  - name: api
    kind: http
    http:
      url: ` + url + `
      headers:
        Authorization: Bearer ${LOUPE_TEST_TOKEN}
      timeout: 200ms
` + extra
}

// pagedServer serves 5 pages of 3 events linked by next links; fault, when
// set, may handle a request instead (return true).
func pagedServer(t *testing.T, fault func(w http.ResponseWriter, r *http.Request, n int) bool) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(hits.Add(1))
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, "no auth", http.StatusUnauthorized)
			return
		}
		if fault != nil && fault(w, r, n) {
			return
		}
		p, _ := strconv.Atoi(r.URL.Query().Get("page"))
		var recs []string
		for i := p * 3; i < p*3+3; i++ {
			recs = append(recs, track(i))
		}
		next := `null`
		if p < 4 {
			next = fmt.Sprintf(`"/events?page=%d"`, p+1)
		}
		fmt.Fprintf(w, `{"data":[%s],"next":%s}`, strings.Join(recs, ","), next)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestHTTPNextLinkAndFaults(t *testing.T) {
	t.Setenv("LOUPE_TEST_TOKEN", "s3cret")
	cases := []struct {
		name  string
		fault func(w http.ResponseWriter, r *http.Request, n int) bool
		check func(t *testing.T, sl *sleeps)
	}{
		{name: "clean"},
		{name: "500s", fault: func(w http.ResponseWriter, r *http.Request, n int) bool {
			if n == 2 || n == 3 {
				http.Error(w, "boom", 500)
				return true
			}
			return false
		}, check: func(t *testing.T, sl *sleeps) {
			if len(sl.d) != 2 || sl.d[0] > time.Millisecond || sl.d[1] > 2*time.Millisecond || sl.d[0] < 500*time.Microsecond {
				t.Errorf("backoff %v", sl.d)
			}
		}},
		{name: "timeout", fault: func(w http.ResponseWriter, r *http.Request, n int) bool {
			if n == 3 {
				select {
				case <-time.After(2 * time.Second):
				case <-r.Context().Done():
				}
				return true
			}
			return false
		}, check: func(t *testing.T, sl *sleeps) {
			if len(sl.d) != 1 {
				t.Errorf("retries %v, want 1", sl.d)
			}
		}},
		{name: "truncated", fault: func(w http.ResponseWriter, r *http.Request, n int) bool {
			if n == 2 {
				w.Header().Set("Content-Length", "5000")
				w.Write([]byte(`{"data":[` + track(3)))
				return true // the server closes the connection short of 5000 bytes
			}
			return false
		}, check: func(t *testing.T, sl *sleeps) {
			if len(sl.d) != 1 {
				t.Errorf("retries %v, want 1", sl.d)
			}
		}},
		{name: "429 seconds", fault: func(w http.ResponseWriter, r *http.Request, n int) bool {
			if n == 2 {
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(429)
				return true
			}
			return false
		}, check: func(t *testing.T, sl *sleeps) {
			if len(sl.d) != 1 || sl.d[0] != 7*time.Second {
				t.Errorf("Retry-After: slept %v, want 7s", sl.d)
			}
		}},
		{name: "429 date", fault: func(w http.ResponseWriter, r *http.Request, n int) bool {
			if n == 2 {
				w.Header().Set("Retry-After", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat))
				w.WriteHeader(429)
				return true
			}
			return false
		}, check: func(t *testing.T, sl *sleeps) {
			if len(sl.d) != 1 || sl.d[0] < 80*time.Second || sl.d[0] > 91*time.Second {
				t.Errorf("Retry-After date: slept %v, want ~90s", sl.d)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := pagedServer(t, tc.fault)
			eng := openEngine(t)
			writeSources(t, eng.Dir(), httpSources(srv.URL+"/events?page=0", "      pagination: {mode: next_link}\n"))
			sl := &sleeps{}
			res := mustRun(t, httpRunner(eng, sl))
			if res.Error != nil || res.Fetched != 15 || res.Ingested != 15 {
				t.Fatalf("%+v %v", res, res.Err())
			}
			if !strings.HasSuffix(res.Cursor, "page=4") {
				t.Errorf("cursor %q", res.Cursor)
			}
			if s := engineStats(t, eng); s.Events != 15 || s.Profiles != 7 {
				t.Fatalf("stats %+v, want 15 events of 7 users", s)
			}
			if cp := checkpoint(t, eng, "api"); !strings.Contains(string(cp), "page=4") {
				t.Errorf("checkpoint %s", cp)
			}
			if tc.check != nil {
				tc.check(t, sl)
			}
			// a second run re-reads only the last page
			res = mustRun(t, httpRunner(eng, sl))
			if res.Fetched != 3 || res.Ingested != 0 || res.Duplicates != 3 {
				t.Errorf("second run %+v", res)
			}
			if s := engineStats(t, eng); s.Events != 15 {
				t.Errorf("second run: %d events", s.Events)
			}
		})
	}
}

func TestHTTPRetriesExhausted(t *testing.T) {
	t.Setenv("LOUPE_TEST_TOKEN", "s3cret")
	srv, hits := pagedServer(t, func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n >= 2 {
			http.Error(w, "down", 503)
			return true
		}
		return false
	})
	eng := openEngine(t)
	writeSources(t, eng.Dir(), httpSources(srv.URL+"/events?page=0", "      max_retries: 3\n      pagination: {mode: next_link}\n"))
	res := mustRun(t, httpRunner(eng, &sleeps{}))
	if res.Error == nil || !strings.Contains(*res.Error, "503") || res.Ingested != 3 {
		t.Fatalf("%+v %v", res, res.Err())
	}
	if hits.Load() != 1+4 {
		t.Errorf("hits %d, want 5", hits.Load())
	}
	if cp := checkpoint(t, eng, "api"); !strings.Contains(string(cp), "page=1") {
		t.Errorf("checkpoint %s", cp)
	}
	if s := engineStats(t, eng); s.Events != 3 {
		t.Errorf("%d events, want the first page's 3", s.Events)
	}
	if ss, err := Status(context.Background(), eng, eng.Dir(), nil); err != nil || len(ss) != 1 || !strings.Contains(ss[0].LastError, "503") || ss[0].Rows != 3 {
		t.Errorf("status %+v %v", ss, err)
	}
	// a 404 is not retried
	srv2 := httptest.NewServer(http.NotFoundHandler())
	defer srv2.Close()
	writeSources(t, eng.Dir(), httpSources(srv2.URL, ""))
	res = mustRun(t, httpRunner(eng, &sleeps{}))
	if res.Error == nil || !strings.Contains(*res.Error, "404") {
		t.Fatalf("%+v", res)
	}
	if s := engineStats(t, eng); s.Events != 3 {
		t.Errorf("after the 404: %d events", s.Events)
	}
}

func TestHTTPMalformedPage(t *testing.T) {
	t.Setenv("LOUPE_TEST_TOKEN", "s3cret")
	var broken atomic.Bool
	broken.Store(true)
	srv, _ := pagedServer(t, func(w http.ResponseWriter, r *http.Request, n int) bool {
		if broken.Load() && r.URL.Query().Get("page") == "2" {
			w.Write([]byte(`{"data":[{"type":"track",`)) // complete response, bad JSON
			return true
		}
		return false
	})
	eng := openEngine(t)
	writeSources(t, eng.Dir(), httpSources(srv.URL+"/events?page=0", "      pagination: {mode: next_link}\n"))
	res := mustRun(t, httpRunner(eng, &sleeps{}))
	if res.Error == nil || !strings.Contains(*res.Error, "malformed page 3") {
		t.Fatalf("%+v", res)
	}
	qs := quarantined(t, eng, "")
	if res.Ingested != 6 || res.Quarantined != 1 || len(qs) != 1 {
		t.Fatalf("%+v %+v", res, qs)
	}
	q := qs[0]
	if q.Source != "api" || !strings.Contains(q.Key, "page=2") || !strings.Contains(q.Reason, "malformed") || string(q.Data) != `{"data":[{"type":"track",` {
		t.Errorf("%+v (data %q)", q, q.Data)
	}
	if cp := checkpoint(t, eng, "api"); !strings.Contains(string(cp), "page=2") {
		t.Errorf("checkpoint %s, want the last good position (page=2 next)", cp)
	}
	if s := engineStats(t, eng); s.Events != 6 {
		t.Fatalf("%d events, want the 2 good pages' 6", s.Events)
	}
	broken.Store(false)
	res = mustRun(t, httpRunner(eng, &sleeps{}))
	if res.Error != nil || res.Ingested != 9 || res.Duplicates != 0 {
		t.Fatalf("resume: %+v %v", res, res.Err())
	}
	if s := engineStats(t, eng); s.Events != 15 {
		t.Fatalf("resume: %d events, want 15", s.Events)
	}
	if qs := quarantined(t, eng, "api"); len(qs) != 1 {
		t.Errorf("resume quarantined again: %+v", qs)
	}
	// NDJSON with a bad line is a malformed page too
	srv3 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s\n%s\n", track(1), `{"type":`)
	}))
	defer srv3.Close()
	eng2 := openEngine(t)
	writeSources(t, eng2.Dir(), httpSources(srv3.URL, ""))
	res = mustRun(t, httpRunner(eng2, &sleeps{}))
	if qs := quarantined(t, eng2, "api"); res.Error == nil || res.Ingested != 0 || len(qs) != 1 || !strings.Contains(qs[0].Reason, "malformed") {
		t.Fatalf("ndjson: %+v %+v", res, qs)
	}
	if s := engineStats(t, eng2); s.Events != 0 || checkpoint(t, eng2, "api") != nil {
		t.Fatalf("ndjson: a malformed first page committed something: %+v", s)
	}
}

func TestHTTPCursorAndSince(t *testing.T) {
	t.Setenv("LOUPE_TEST_TOKEN", "s3cret")
	// cursor: an array of records plus a cursor, mapped records (not Segment)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := strconv.Atoi(r.URL.Query().Get("after"))
		if c >= 6 {
			fmt.Fprint(w, `{"items":[],"meta":{"cursor":null}}`)
			return
		}
		fmt.Fprintf(w, `{"items":[{"id":%d,"who":{"email":"a%d@x.io"},"at":"2026-02-01T00:00:0%dZ"},{"id":%d,"at":"2026-02-01T00:00:0%dZ"}],"meta":{"cursor":"%d"}}`,
			c, c, c, c+1, c+1, c+2)
	}))
	defer srv.Close()
	eng := openEngine(t)
	writeSources(t, eng.Dir(), httpSources(srv.URL, `      data_field: items
      pagination: {mode: cursor, cursor_field: meta.cursor, cursor_param: after}
    mapping:
      user_id: id
      timestamp: at
      traits: {email: who.email}
      message_id: id
`))
	res := mustRun(t, httpRunner(eng, &sleeps{}))
	if res.Error != nil || res.Fetched != 6 || res.Ingested != 6 || res.Cursor != "6" {
		t.Fatalf("%+v %v", res, res.Err())
	}
	if s := engineStats(t, eng); s.Events != 6 {
		t.Fatalf("%d events, want 6", s.Events)
	}
	if cp := checkpoint(t, eng, "api"); !strings.Contains(string(cp), `"6"`) {
		t.Errorf("checkpoint %s", cp)
	}
	if p, err := eng.Profile(context.Background(), "user_id:2"); err != nil || p.Traits["email"].Value != "a2@x.io" || p.EventCount != 1 {
		t.Errorf("mapped record: %+v %v", p, err)
	}
	// since: NDJSON, records with timestamp >= since
	all := []string{}
	for i := 0; i < 7; i++ {
		all = append(all, track(i))
	}
	var mu gosync.Mutex
	var sinces []string
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		since := r.URL.Query().Get("since")
		mu.Lock()
		sinces = append(sinces, since)
		mu.Unlock()
		n := 0
		for i, rec := range all {
			ts := fmt.Sprintf("2026-01-01T00:00:%02dZ", i)
			if ts >= since && n < 3 {
				fmt.Fprintln(w, rec)
				n++
			}
		}
	}))
	defer srv2.Close()
	eng2 := openEngine(t)
	writeSources(t, eng2.Dir(), httpSources(srv2.URL, "      pagination: {mode: since, since_field: timestamp}\n"))
	res = mustRun(t, httpRunner(eng2, &sleeps{}))
	if res.Error != nil || res.Ingested != 7 || res.Cursor != "2026-01-01T00:00:06Z" {
		t.Fatalf("since: %+v %v (sinces %q)", res, res.Err(), sinces)
	}
	if s := engineStats(t, eng2); s.Events != 7 {
		t.Fatalf("since: %d events, want 7", s.Events)
	}
	if cp := checkpoint(t, eng2, "api"); !strings.Contains(string(cp), "2026-01-01T00:00:06Z") {
		t.Errorf("since: checkpoint %s", cp)
	}
}
