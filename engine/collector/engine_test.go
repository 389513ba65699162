package collector

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	gosync "sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/loupe-cdp/loupe/engine"
)

// eventsByUser lists each user's messageIds through the engine API.
func eventsByUser(t *testing.T, eng *engine.Engine, users []string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, u := range users {
		var ids []string
		cursor := ""
		for {
			p, err := eng.Events(context.Background(), "user_id:"+u, cursor, 500)
			if err != nil {
				t.Fatalf("%s: %v", u, err)
			}
			for _, e := range p.Events {
				ids = append(ids, e.MessageID)
			}
			if p.Next == "" {
				break
			}
			cursor = p.Next
		}
		slices.Sort(ids)
		out[u] = ids
	}
	return out
}

// Real analytics-go traffic into a real engine: every event is stored.
func TestAnalyticsGoSDKEngine(t *testing.T) {
	eng, err := engine.Open(t.TempDir(), engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	s := New(eng, Options{WriteKeys: []string{"sdk-key"}})
	srv := httptest.NewServer(s.Handler())
	sent := sdkTraffic(t, srv.URL, "sdk-key", 1200)
	srv.Close()
	s.Close()
	st, err := eng.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// alias messages may carry no event of their own in the store's count;
	// check every non-alias event by user, and the total
	var users []string
	for i := 0; i < 37; i++ {
		users = append(users, fmt.Sprintf("user-%d", i))
	}
	found := map[string]bool{}
	for _, ids := range eventsByUser(t, eng, users) {
		for _, id := range ids {
			found[id] = true
		}
	}
	missing := 0
	for i, id := range sent {
		if i%6 == 3 { // screen events are anonymous: counted in Stats only
			continue
		}
		if !found[id] {
			missing++
		}
	}
	if missing > 0 || st.Events != int64(len(sent)) {
		t.Fatalf("missing %d of %d by user; store holds %d events, sent %d", missing, len(sent), st.Events, len(sent))
	}
}

// TestCollectorChild is the child of TestCollectorCrash: it serves the
// collector on LOUPE_CRASH_DIR until SIGTERM.
func TestCollectorChild(t *testing.T) {
	dir := os.Getenv("LOUPE_CRASH_DIR")
	if dir == "" {
		t.Skip("child process of TestCollectorCrash")
	}
	eng, err := engine.Open(dir, engine.Options{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	s := New(eng, Options{WriteKeys: []string{"wk"}})
	err = s.Serve(ctx, "127.0.0.1:0", func(a net.Addr) { fmt.Println("addr", a) })
	eng.Close()
	if err != nil {
		fmt.Println("serve:", err)
		os.Exit(3)
	}
}

func startCollectorChild(t *testing.T, dir string) (*exec.Cmd, string) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCollectorChild$")
	cmd.Env = append(os.Environ(), "LOUPE_CRASH_DIR="+dir)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "addr "); ok {
			go func() {
				for sc.Scan() {
				}
			}()
			return cmd, "http://" + a
		}
	}
	t.Fatal("child did not start")
	return nil, ""
}

// A collector killed with SIGKILL under load and restarted, with clients
// retrying what was not acknowledged (as the SDKs do), ends with the same
// store as a clean run; everything acknowledged before the kill survives.
func TestCollectorCrash(t *testing.T) {
	const n, per, users = 6000, 20, 100
	var batches [][]string
	var all []string
	for i := 0; i < n; i += per {
		var b []string
		for j := i; j < i+per; j++ {
			id := fmt.Sprintf("c-%d", j)
			all = append(all, id)
			b = append(b, fmt.Sprintf(`{"type":"track","messageId":"%s","userId":"u%d","event":"Clicked","properties":{"n":%d},"timestamp":"2026-05-01T00:00:00Z"}`, id, j%users, j))
		}
		batches = append(batches, b)
	}
	send := func(addr func() string, acked *atomic.Int64) {
		work := make(chan []string)
		var wg gosync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range work {
					body := `{"batch":[` + strings.Join(b, ",") + `]}`
					for {
						req, _ := http.NewRequest("POST", addr()+"/v1/batch", strings.NewReader(body))
						req.SetBasicAuth("wk", "")
						resp, err := http.DefaultClient.Do(req)
						if err == nil {
							resp.Body.Close()
							if resp.StatusCode == 200 {
								acked.Add(int64(len(b)))
								break
							}
						}
						time.Sleep(10 * time.Millisecond) // retry, like an SDK
					}
				}
			}()
		}
		for _, b := range batches {
			work <- b
		}
		close(work)
		wg.Wait()
	}
	var ulist []string
	for u := 0; u < users; u++ {
		ulist = append(ulist, fmt.Sprintf("u%d", u))
	}

	// crashed run
	crashDir := t.TempDir()
	child, addr := startCollectorChild(t, crashDir)
	var cur atomic.Value
	cur.Store(addr)
	var acked atomic.Int64
	done := make(chan struct{})
	go func() { send(func() string { return cur.Load().(string) }, &acked); close(done) }()
	for acked.Load() < n/3 {
		time.Sleep(time.Millisecond)
	}
	child.Process.Signal(syscall.SIGKILL)
	child.Wait()
	ackedAtKill := acked.Load()
	child, addr = startCollectorChild(t, crashDir)
	cur.Store(addr)
	<-done
	child.Process.Signal(syscall.SIGTERM)
	if err := child.Wait(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	t.Logf("killed with %d of %d events acknowledged", ackedAtKill, n)

	// clean run
	cleanDir := t.TempDir()
	eng, err := engine.Open(cleanDir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := New(eng, Options{WriteKeys: []string{"wk"}})
	srv := httptest.NewServer(s.Handler())
	var acked2 atomic.Int64
	send(func() string { return srv.URL }, &acked2)
	srv.Close()
	s.Close()
	clean := eventsByUser(t, eng, ulist)
	cst, _ := eng.Stats(context.Background())
	eng.Close()

	eng, err = engine.Open(crashDir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	crash := eventsByUser(t, eng, ulist)
	kst, _ := eng.Stats(context.Background())
	if kst.Events != n || cst.Events != n {
		t.Fatalf("events: crashed %d, clean %d, want %d", kst.Events, cst.Events, n)
	}
	for _, u := range ulist {
		if !slices.Equal(clean[u], crash[u]) {
			t.Fatalf("%s differs: %d vs %d events", u, len(crash[u]), len(clean[u]))
		}
	}
}
