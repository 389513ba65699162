package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	analytics "gopkg.in/segmentio/analytics-go.v3"

	"github.com/loupe-cdp/loupe/engine"
	"github.com/loupe-cdp/loupe/engine/segment"
)

type memIngester struct {
	mu      gosync.Mutex
	events  map[string][]byte
	batches int
	delay   time.Duration
}

func (m *memIngester) IngestBatch(ctx context.Context, msgs []engine.Message, cp *engine.Checkpoint) (engine.IngestStats, error) {
	time.Sleep(m.delay)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.events == nil {
		m.events = map[string][]byte{}
	}
	m.batches++
	var st engine.IngestStats
	for _, msg := range msgs {
		ev, err := segment.Parse(msg.Data, time.Now())
		if err != nil {
			st.Rejected++
			continue
		}
		if _, dup := m.events[ev.MessageID]; dup {
			st.Duplicates++
			continue
		}
		m.events[ev.MessageID] = msg.Data
		st.Ingested++
	}
	return st, nil
}

func (m *memIngester) get(id string) map[string]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	var v map[string]any
	json.Unmarshal(m.events[id], &v)
	return v
}

func (m *memIngester) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.events)
}

func post(t *testing.T, url, key string, body []byte, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	if key != "" {
		req.SetBasicAuth(key, "")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func TestCollectorHTTP(t *testing.T) {
	st := &memIngester{}
	s := New(st, Options{WriteKeys: []string{"wk1"}})
	srv := httptest.NewServer(s.Handler())
	defer func() { srv.Close(); s.Close() }()
	u := srv.URL

	code, body := post(t, u+"/v1/track", "", []byte(`{"userId":"a","event":"E","messageId":"m0"}`), nil)
	if code != 401 {
		t.Errorf("no key: %d %s", code, body)
	}
	code, _ = post(t, u+"/v1/track", "nope", []byte(`{"userId":"a","event":"E","messageId":"m0"}`), nil)
	if code != 401 {
		t.Errorf("bad key: %d", code)
	}
	code, body = post(t, u+"/v1/track", "wk1", []byte(`{"userId":"a","event":`), nil)
	if code != 400 || !strings.Contains(body, "invalid JSON") {
		t.Errorf("bad JSON: %d %s", code, body)
	}
	code, body = post(t, u+"/v1/track", "wk1", []byte(`{"userId":"a","event":"E","messageId":"m1"}`), map[string]string{"Sec-GPC": "1"})
	if code != 200 || body != `{"success":true}` {
		t.Fatalf("track: %d %s", code, body)
	}
	m := st.get("m1")
	if m["type"] != "track" || m["context"].(map[string]any)["gpc"] != true || m["receivedAt"] == nil {
		t.Errorf("stored %v", m)
	}
	// gzip batch with a top-level context; writeKey in the body
	batch := `{"writeKey":"wk1","context":{"library":{"name":"x"}},"batch":[
		{"type":"identify","userId":"a","traits":{"email":"a@x.io"},"messageId":"m2"},
		{"type":"page","userId":"a","name":"Home","messageId":"m3","context":{"ip":"1.2.3.4"}}]}`
	code, body = post(t, u+"/v1/batch", "", gz([]byte(batch)), map[string]string{"Content-Encoding": "gzip"})
	if code != 200 {
		t.Fatalf("gzip batch: %d %s", code, body)
	}
	if c := st.get("m3")["context"].(map[string]any); c["ip"] != "1.2.3.4" || c["library"] == nil {
		t.Errorf("context merge %v", c)
	}
	if st.get("m2")["traits"] == nil {
		t.Error("m2 missing")
	}
	// limits
	big := `{"userId":"a","event":"E","properties":{"x":"` + strings.Repeat("y", 33<<10) + `"}}`
	code, body = post(t, u+"/v1/track", "wk1", []byte(big), nil)
	if code != 413 || !strings.Contains(body, "over 32768") {
		t.Errorf("32KB: %d %s", code, body)
	}
	var sb strings.Builder
	sb.WriteString(`{"batch":[`)
	for i := 0; i < 40; i++ {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `{"type":"track","userId":"a","event":"E","properties":{"x":"%s"}}`, strings.Repeat("y", 15<<10))
	}
	sb.WriteString("]}")
	code, _ = post(t, u+"/v1/batch", "wk1", []byte(sb.String()), nil)
	if code != 413 {
		t.Errorf("500KB: %d", code)
	}
	code, _ = post(t, u+"/v1/batch", "wk1", gz([]byte(sb.String())), map[string]string{"Content-Encoding": "gzip"})
	if code != 413 {
		t.Errorf("500KB gzip bomb: %d", code)
	}
	code, _ = post(t, u+"/v1/track", "wk1", []byte("garbage"), map[string]string{"Content-Encoding": "gzip"})
	if code != 400 {
		t.Errorf("bad gzip: %d", code)
	}
	resp, _ := http.Get(u + "/health")
	if resp.StatusCode != 200 {
		t.Errorf("health %d", resp.StatusCode)
	}
	resp, _ = http.Get(u + "/v1/track")
	if resp.StatusCode != 405 {
		t.Errorf("GET track %d", resp.StatusCode)
	}
	if n := st.count(); n != 3 {
		t.Errorf("stored %d", n)
	}
}

// Concurrent requests are grouped into few IngestBatch calls, and a
// shutdown while requests are in flight loses none of those answered 200.
func TestCollectorGroupingAndShutdown(t *testing.T) {
	st := &memIngester{delay: 5 * time.Millisecond}
	s := New(st, Options{WriteKeys: []string{"wk"}})
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, "127.0.0.1:0", func(a net.Addr) { addrc <- a }) }()
	u := "http://" + (<-addrc).String()
	var ok atomic.Int64
	var okIDs gosync.Map
	var wg gosync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				req, _ := http.NewRequest("POST", u+"/v1/track", strings.NewReader(`{"userId":"u","event":"E","messageId":"`+id+`"}`))
				req.SetBasicAuth("wk", "")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					ok.Add(1)
					okIDs.Store(id, true)
				} else if resp.StatusCode == 503 {
					return
				}
			}
		}(w)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	okIDs.Range(func(k, v any) bool {
		if st.get(k.(string)) == nil {
			t.Errorf("answered 200 but not stored: %s", k)
		}
		return true
	})
	if ok.Load() < 20 {
		t.Errorf("only %d requests", ok.Load())
	}
	if st.batches*3 > int(ok.Load()) {
		t.Errorf("%d batches for %d requests: not grouped", st.batches, ok.Load())
	}
	t.Logf("%d requests in %d batches", ok.Load(), st.batches)
}

// Real Segment SDK traffic: every event sent by analytics-go is stored.
func TestAnalyticsGoSDK(t *testing.T) {
	st := &memIngester{}
	s := New(st, Options{WriteKeys: []string{"sdk-key"}})
	srv := httptest.NewServer(s.Handler())
	defer func() { srv.Close(); s.Close() }()
	sent := sdkTraffic(t, srv.URL, "sdk-key", 500)
	for _, id := range sent {
		if st.get(id) == nil {
			t.Fatalf("event %s not stored", id)
		}
	}
	if st.count() != len(sent) {
		t.Errorf("stored %d, sent %d", st.count(), len(sent))
	}
}

// sdkTraffic sends n events of every kind through analytics-go and returns
// their messageIds after the client has flushed.
func sdkTraffic(t testing.TB, endpoint, key string, n int) []string {
	var failures atomic.Int64
	client, err := analytics.NewWithConfig(key, analytics.Config{
		Endpoint:  endpoint,
		BatchSize: 100,
		Interval:  50 * time.Millisecond,
		Callback:  callback{&failures},
		Logger:    analytics.StdLogger(log.New(io.Discard, "", 0)),
	})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("sdk-%d", i)
		uid := fmt.Sprintf("user-%d", i%37)
		var m analytics.Message
		switch i % 6 {
		case 0:
			m = analytics.Identify{MessageId: id, UserId: uid, Traits: analytics.NewTraits().SetEmail(uid+"@example.com").Set("plan", "pro")}
		case 1:
			m = analytics.Track{MessageId: id, UserId: uid, Event: "Order Completed", Properties: analytics.NewProperties().SetRevenue(9.99).Set("n", i)}
		case 2:
			m = analytics.Page{MessageId: id, UserId: uid, Name: "Home", Properties: analytics.NewProperties().SetURL("https://x.io/")}
		case 3:
			m = analytics.Screen{MessageId: id, AnonymousId: "anon-" + uid, Name: "Settings"}
		case 4:
			m = analytics.Group{MessageId: id, UserId: uid, GroupId: "acme", Traits: analytics.NewTraits().SetName("Acme")}
		case 5:
			m = analytics.Alias{MessageId: id, UserId: uid, PreviousId: "anon-" + uid}
		}
		if err := client.Enqueue(m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if failures.Load() > 0 {
		t.Fatalf("%d SDK failures", failures.Load())
	}
	return ids
}

type callback struct{ failures *atomic.Int64 }

func (c callback) Success(analytics.Message) {}
func (c callback) Failure(m analytics.Message, err error) {
	c.failures.Add(1)
}

func TestLoadWriteKeys(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadWriteKeys(dir); err != ErrNoWriteKeys {
		t.Errorf("missing file: %v", err)
	}
	t.Setenv("LOUPE_TEST_WK", "from-env")
	os.WriteFile(filepath.Join(dir, KeysFile), []byte("write_keys:\n  - ${LOUPE_TEST_WK}\n  - literal\n"), 0o600)
	keys, err := LoadWriteKeys(dir)
	if err != nil || len(keys) != 2 || keys[0] != "from-env" {
		t.Errorf("%v %v", keys, err)
	}
}
