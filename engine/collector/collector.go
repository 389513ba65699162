// Package collector is `loupe serve`: an HTTP endpoint that speaks Segment's
// Tracking API, so Segment SDKs (analytics-go, analytics-node, analytics.js)
// can send events straight to a Loupe data dir.
//
// # Endpoints
//
//	POST /v1/batch      {"batch":[msg,...], "context":{...}, "sentAt":...}
//	POST /v1/identify   one message; likewise track, page, screen, group, alias
//	GET  /health        {"ok":true,...}
//
// Every POST needs HTTP basic auth with a write key as the user name (the
// password is ignored), as Segment's SDKs send it; a "writeKey" field in the
// body is accepted too (analytics.js beacons). Bodies may be gzip
// (Content-Encoding: gzip). Limits are Segment's: 500 KB per request
// (after decompression) and 32 KB per message.
//
// Responses: 200 {"success":true} once the messages are durably written; 400
// {"success":false,"error":"..."} for bad JSON; 401 without a valid write
// key; 413 over a limit; 405 for other methods; 503 while shutting down; 500
// if the store failed.
//
// A `Sec-GPC: 1` request header (Global Privacy Control) sets
// context.gpc=true on every message of the request. Messages without
// receivedAt get the server time; messages of /v1/<type> get that type
// when they carry none; the batch's top-level context is merged under each
// message's own context.
//
// # Write keys
//
// Keys live in collector.yaml in the data dir:
//
//	write_keys:
//	  - ${LOUPE_WRITE_KEY}     # expanded from the environment at start
//	  - wk_test_9f8e7d         # literal keys are allowed: SDK write keys are
//	                           # not secrets (browsers ship them)
//
// # Durability and throughput
//
// Handlers hand their messages to a single writer goroutine, which waits a
// short linger (2 ms) for more requests and writes everything it has in one
// IngestBatch (at most 2,000 messages / 8 MB), then answers every request
// in the group. IngestBatch is fsync'd before it returns, so a 200 means
// the events survive kill -9. Shutdown stops accepting connections, lets
// in-flight requests finish their write, then stops the writer: nothing
// that got a 200 is lost, and nothing accepted is left unanswered.
package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/loupe-cdp/loupe/engine"
	lsync "github.com/loupe-cdp/loupe/engine/sync"
)

// Limits, as Segment's Tracking API sets them.
const (
	MaxRequestBytes = 500 << 10
	MaxMessageBytes = 32 << 10
	// DefaultAddr is loopback: exposing the collector is a deliberate act.
	DefaultAddr = "127.0.0.1:8088"
	// KeysFile is the write-key file in the data dir.
	KeysFile = "collector.yaml"
	// SourceName labels collector messages in reject reports.
	SourceName = "collector"
)

// Ingester is what the collector needs of the engine.
type Ingester interface {
	IngestBatch(ctx context.Context, msgs []engine.Message, cp *engine.Checkpoint) (engine.IngestStats, error)
}

// ErrNoWriteKeys means collector.yaml declares no key: every request would
// be refused.
var ErrNoWriteKeys = errors.New("no write keys: add write_keys to " + KeysFile + " in the data dir")

// LoadWriteKeys reads dataDir/collector.yaml, expanding ${ENV}.
func LoadWriteKeys(dataDir string) ([]string, error) {
	path := filepath.Join(dataDir, KeysFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoWriteKeys
	}
	if err != nil {
		return nil, err
	}
	var f struct {
		WriteKeys []string `yaml:"write_keys"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var keys []string
	for _, k := range f.WriteKeys {
		v, err := lsync.ExpandEnv(k, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if v = strings.TrimSpace(v); v != "" {
			keys = append(keys, v)
		}
	}
	if len(keys) == 0 {
		return nil, ErrNoWriteKeys
	}
	return keys, nil
}

// Options configure a Server.
type Options struct {
	WriteKeys []string
	// Linger is how long the writer waits for more requests before a write
	// (default 2ms; negative: no wait).
	Linger time.Duration
	// MaxBatch caps messages per IngestBatch (default 2000).
	MaxBatch int
	Now      func() time.Time
}

// Stats counts what the server did.
type Stats struct {
	Requests int64 `json:"requests"`
	Messages int64 `json:"messages"`
	Batches  int64 `json:"batches"`
	Ingested int64 `json:"ingested"`
	Errors   int64 `json:"errors"`
}

// Server is the collector.
type Server struct {
	st       Ingester
	opts     Options
	keys     map[string]bool
	jobs     chan *job
	closing  chan struct{}
	done     chan struct{}
	stop     gosync.Once
	inflight gosync.WaitGroup
	mu       gosync.RWMutex
	closed   bool

	requests, messages, batches, ingested, errs atomic.Int64
}

type job struct {
	msgs []engine.Message
	size int
	res  chan error
}

// New starts the writer goroutine; Close stops it.
func New(st Ingester, opts Options) *Server {
	if opts.Linger == 0 {
		opts.Linger = 2 * time.Millisecond
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = lsync.MaxBatch
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{st: st, opts: opts, keys: map[string]bool{}, jobs: make(chan *job, 1024),
		closing: make(chan struct{}), done: make(chan struct{})}
	for _, k := range opts.WriteKeys {
		s.keys[k] = true
	}
	go s.writer()
	return s
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{Requests: s.requests.Load(), Messages: s.messages.Load(), Batches: s.batches.Load(),
		Ingested: s.ingested.Load(), Errors: s.errs.Load()}
}

// writer groups jobs into IngestBatch calls.
func (s *Server) writer() {
	defer close(s.done)
	for {
		var first *job
		select {
		case first = <-s.jobs:
		case <-s.closing:
			// drain what was queued before Close
			for {
				select {
				case j := <-s.jobs:
					s.write([]*job{j})
				default:
					return
				}
			}
		}
		group := []*job{first}
		n, size := len(first.msgs), first.size
		var timer <-chan time.Time
		if s.opts.Linger > 0 {
			timer = time.After(s.opts.Linger)
		}
	collect:
		for n < s.opts.MaxBatch && size < lsync.MaxBatchBytes/2 {
			var j *job
			if timer == nil {
				select {
				case j = <-s.jobs:
				default:
					break collect
				}
			} else {
				select {
				case j = <-s.jobs:
				case <-timer:
					break collect
				}
			}
			group = append(group, j)
			n += len(j.msgs)
			size += j.size
		}
		s.write(group)
	}
}

func (s *Server) write(group []*job) {
	var msgs []engine.Message
	for _, j := range group {
		msgs = append(msgs, j.msgs...)
	}
	var err error
	// honour the engine's batch size even for one oversized group
	for start := 0; start < len(msgs) && err == nil; start += lsync.MaxBatch {
		end := min(start+lsync.MaxBatch, len(msgs))
		var st engine.IngestStats
		st, err = s.st.IngestBatch(context.Background(), msgs[start:end], nil)
		s.ingested.Add(st.Ingested)
	}
	s.batches.Add(1)
	if err != nil {
		s.errs.Add(1)
	}
	for _, j := range group {
		j.res <- err
	}
}

// Close waits for accepted requests to be written and stops the writer.
// Call it after http.Server.Shutdown has returned.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.inflight.Wait()
	s.stop.Do(func() { close(s.closing) })
	<-s.done
}

// submit hands msgs to the writer and waits until they are durable.
func (s *Server) submit(msgs []engine.Message, size int) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return errShuttingDown
	}
	s.inflight.Add(1)
	s.mu.RUnlock()
	defer s.inflight.Done()
	j := &job{msgs: msgs, size: size, res: make(chan error, 1)}
	s.jobs <- j
	// Wait even if the client went away: the write is under way and its
	// result must be known before shutdown completes.
	return <-j.res
}

var errShuttingDown = errors.New("shutting down")

// Handler serves the Tracking API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", s.health)
	for _, t := range []string{"batch", "identify", "track", "page", "screen", "group", "alias", "import"} {
		typ := t
		mux.HandleFunc("/v1/"+t, func(w http.ResponseWriter, r *http.Request) { s.track(w, r, typ) })
	}
	return mux
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	w.Header().Set("Content-Type", "application/json")
	if closed {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(map[string]any{"ok": !closed, "stats": s.Stats()})
}

func reply(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if code == http.StatusOK {
		io.WriteString(w, `{"success":true}`)
		return
	}
	b, _ := json.Marshal(map[string]any{"success": false, "error": msg})
	w.Write(b)
}

// RequestError is a request the collector refuses, with its status.
type RequestError struct {
	Status int
	Reason string
}

func (e *RequestError) Error() string { return e.Reason }

func reqErr(status int, format string, args ...any) *RequestError {
	return &RequestError{Status: status, Reason: fmt.Sprintf(format, args...)}
}

func (s *Server) track(w http.ResponseWriter, r *http.Request, typ string) {
	s.requests.Add(1)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		reply(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	body, rerr := readBody(r)
	if rerr != nil {
		reply(w, rerr.Status, rerr.Reason)
		return
	}
	key, _, hasAuth := r.BasicAuth()
	if !hasAuth {
		key = bodyWriteKey(body)
	}
	if !s.keys[key] {
		w.Header().Set("WWW-Authenticate", `Basic realm="loupe"`)
		reply(w, http.StatusUnauthorized, "a valid write key is required as the basic-auth user name")
		return
	}
	msgs, size, rerr := s.Parse(body, typ, r.Header.Get("Sec-GPC") == "1")
	if rerr != nil {
		reply(w, rerr.Status, rerr.Reason)
		return
	}
	if len(msgs) == 0 {
		reply(w, http.StatusOK, "")
		return
	}
	s.messages.Add(int64(len(msgs)))
	if err := s.submit(msgs, size); err != nil {
		if errors.Is(err, errShuttingDown) {
			reply(w, http.StatusServiceUnavailable, "shutting down")
			return
		}
		reply(w, http.StatusInternalServerError, "store: "+err.Error())
		return
	}
	reply(w, http.StatusOK, "")
}

// readBody reads at most MaxRequestBytes of (decompressed) body.
func readBody(r *http.Request) ([]byte, *RequestError) {
	if r.ContentLength > MaxRequestBytes {
		return nil, reqErr(http.StatusRequestEntityTooLarge, "request body over %d bytes", MaxRequestBytes)
	}
	var in io.Reader = http.MaxBytesReader(nil, r.Body, MaxRequestBytes+1)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(in)
		if err != nil {
			return nil, reqErr(http.StatusBadRequest, "bad gzip body: %v", err)
		}
		defer zr.Close()
		in = zr
	default:
		return nil, reqErr(http.StatusUnsupportedMediaType, "Content-Encoding %q: only gzip is supported", enc)
	}
	body, err := io.ReadAll(io.LimitReader(in, MaxRequestBytes+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, reqErr(http.StatusRequestEntityTooLarge, "request body over %d bytes", MaxRequestBytes)
		}
		return nil, reqErr(http.StatusBadRequest, "reading body: %v", err)
	}
	if len(body) > MaxRequestBytes {
		return nil, reqErr(http.StatusRequestEntityTooLarge, "request body over %d bytes", MaxRequestBytes)
	}
	return body, nil
}

func bodyWriteKey(body []byte) string {
	var v struct {
		WriteKey string `json:"writeKey"`
	}
	_ = json.Unmarshal(body, &v)
	return v.WriteKey
}

// Parse turns a request body into messages ready for IngestBatch: typ is
// the endpoint ("batch", "track", ...); gpc sets context.gpc. It returns the
// total size of the messages.
func (s *Server) Parse(body []byte, typ string, gpc bool) ([]engine.Message, int, *RequestError) {
	now := s.opts.Now().UTC().Format(time.RFC3339Nano)
	var raws []json.RawMessage
	var batchCtx map[string]json.RawMessage
	if typ == "batch" || typ == "import" {
		var b struct {
			Batch   []json.RawMessage          `json:"batch"`
			Context map[string]json.RawMessage `json:"context"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			return nil, 0, reqErr(http.StatusBadRequest, "invalid JSON: %v", err)
		}
		raws, batchCtx = b.Batch, b.Context
		typ = ""
	} else {
		if !json.Valid(body) {
			var v any
			err := json.Unmarshal(body, &v)
			return nil, 0, reqErr(http.StatusBadRequest, "invalid JSON: %v", err)
		}
		raws = []json.RawMessage{body}
	}
	msgs := make([]engine.Message, 0, len(raws))
	size := 0
	for i, raw := range raws {
		if len(raw) > MaxMessageBytes {
			return nil, 0, reqErr(http.StatusRequestEntityTooLarge, "message %d is %d bytes, over %d", i+1, len(raw), MaxMessageBytes)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil || m == nil {
			return nil, 0, reqErr(http.StatusBadRequest, "message %d: not a JSON object", i+1)
		}
		delete(m, "writeKey")
		if _, ok := m["type"]; !ok && typ != "" {
			m["type"] = json.RawMessage(`"` + typ + `"`)
		}
		if _, ok := m["receivedAt"]; !ok {
			m["receivedAt"] = json.RawMessage(`"` + now + `"`)
		}
		if gpc || len(batchCtx) > 0 {
			var c map[string]json.RawMessage
			if rc, ok := m["context"]; ok {
				if err := json.Unmarshal(rc, &c); err != nil {
					return nil, 0, reqErr(http.StatusBadRequest, "message %d: context is not an object", i+1)
				}
			}
			if c == nil {
				c = map[string]json.RawMessage{}
			}
			for k, v := range batchCtx {
				if _, own := c[k]; !own {
					c[k] = v
				}
			}
			if gpc {
				c["gpc"] = json.RawMessage("true")
			}
			m["context"], _ = json.Marshal(c)
		}
		out, err := json.Marshal(m)
		if err != nil {
			return nil, 0, reqErr(http.StatusBadRequest, "message %d: %v", i+1, err)
		}
		size += len(out)
		msgs = append(msgs, engine.Message{Data: out, Source: SourceName, Line: i + 1})
	}
	return msgs, size, nil
}

// Serve listens on addr and serves until ctx is cancelled, then shuts down
// gracefully: no new connections, in-flight requests finish and are
// written, the writer stops. ready, if set, gets the bound address.
func (s *Server) Serve(ctx context.Context, addr string, ready func(net.Addr)) error {
	if addr == "" {
		addr = DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = hs.Shutdown(sctx)
	s.Close()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: requests still running after 30s")
	}
	return nil
}
