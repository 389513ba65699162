package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/loupe-cdp/loupe/engine"
)

// HTTP defaults.
const (
	DefaultHTTPTimeout = 30 * time.Second
	DefaultMaxRetries  = 5
	DefaultBackoffBase = 500 * time.Millisecond
	DefaultBackoffMax  = 30 * time.Second
	// MaxRetryAfter caps a server's Retry-After.
	MaxRetryAfter = 5 * time.Minute
	// MaxPageBytes bounds one response body.
	MaxPageBytes = 256 << 20
)

// httpCheckpoint is an http source's position: the next page's URL
// (next_link), the cursor to send (cursor), or the greatest since value
// seen (since).
type httpCheckpoint struct {
	Next   string `json:"next,omitempty"`
	Cursor string `json:"cursor,omitempty"`
	Since  string `json:"since,omitempty"`
}

func (c httpCheckpoint) String() string {
	switch {
	case c.Next != "":
		return c.Next
	case c.Cursor != "":
		return c.Cursor
	}
	return c.Since
}

type httpOptions struct {
	client    *http.Client
	base, max time.Duration
	sleep     func(ctx context.Context, d time.Duration) error
	now       func() time.Time
}

func (r *Runner) httpOptions() httpOptions {
	o := httpOptions{client: r.HTTPClient, base: r.BackoffBase, max: r.BackoffMax, now: r.now}
	if o.client == nil {
		o.client = http.DefaultClient
	}
	if o.base <= 0 {
		o.base = DefaultBackoffBase
	}
	if o.max <= 0 {
		o.max = DefaultBackoffMax
	}
	o.sleep = r.Sleep
	if o.sleep == nil {
		o.sleep = sleepCtx
	}
	return o
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Fetcher GETs a URL with retries: exponential backoff with jitter on
// network errors, timeouts, 5xx and truncated bodies; 429 and 503 wait for
// Retry-After (seconds or an HTTP date) when the server sends one.
type Fetcher struct {
	Client     *http.Client
	Headers    map[string]string
	Timeout    time.Duration // per attempt
	MaxRetries int
	Base, Max  time.Duration
	Sleep      func(ctx context.Context, d time.Duration) error
	Now        func() time.Time
	// Retries counts retried attempts (for tests and progress).
	Retries int
}

// StatusError is a non-retryable HTTP status, or the last one after
// retries ran out.
type StatusError struct {
	URL    string
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("GET %s: HTTP %d %s", redactURL(e.URL), e.Status, strings.TrimSpace(e.Body))
}

// redactURL drops user info and query values that look like secrets.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.User = nil
	q := u.Query()
	for k := range q {
		if sensitiveHeader(k) {
			q.Set(k, "xxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Backoff is the delay before retry number attempt (0-based): base·2^attempt
// capped at max, with "equal jitter" (a random half on top of a fixed half).
func Backoff(base, max time.Duration, attempt int) time.Duration {
	d := base
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// ParseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

// Get fetches url and returns the whole body.
func (f *Fetcher) Get(ctx context.Context, u string) ([]byte, http.Header, error) {
	retries := f.MaxRetries
	if retries < 0 {
		retries = 0
	}
	var lastErr error
	for attempt := 0; ; attempt++ {
		body, hdr, retryAfter, err := f.once(ctx, u)
		if err == nil {
			return body, hdr, nil
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		var se *StatusError
		if errors.As(err, &se) && !retryable(se.Status) {
			return nil, nil, err
		}
		lastErr = err
		if attempt >= retries {
			return nil, nil, fmt.Errorf("after %d attempts: %w", attempt+1, lastErr)
		}
		d := Backoff(f.Base, f.Max, attempt)
		if retryAfter >= 0 {
			d = min(retryAfter, MaxRetryAfter)
		}
		f.Retries++
		if err := f.Sleep(ctx, d); err != nil {
			return nil, nil, err
		}
	}
}

func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500
}

// once is one attempt; retryAfter is -1 unless the server asked for a delay.
func (f *Fetcher) once(ctx context.Context, u string) (body []byte, hdr http.Header, retryAfter time.Duration, err error) {
	retryAfter = -1
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = DefaultHTTPTimeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, -1, &StatusError{URL: u, Status: 0, Body: err.Error()}
	}
	req.Header.Set("Accept", "application/json, application/x-ndjson")
	req.Header.Set("User-Agent", "loupe-sync")
	for k, v := range f.Headers {
		req.Header.Set(k, v)
	}
	resp, err := f.Client.Do(req)
	if err != nil {
		return nil, nil, -1, fmt.Errorf("GET %s: %w", redactURL(u), scrub(err, u))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), f.now()); ok {
				retryAfter = d
			}
		}
		return nil, nil, retryAfter, &StatusError{URL: u, Status: resp.StatusCode, Body: string(b)}
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, MaxPageBytes+1))
	if err != nil {
		// A connection cut mid-body (unexpected EOF) or a timeout while
		// reading: retry the page.
		return nil, nil, -1, fmt.Errorf("GET %s: reading body: %w", redactURL(u), scrub(err, u))
	}
	if len(body) > MaxPageBytes {
		return nil, nil, -1, &StatusError{URL: u, Status: resp.StatusCode, Body: "page larger than 256 MB"}
	}
	return body, resp.Header, -1, nil
}

func (f *Fetcher) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// scrub removes the raw URL (which may carry a token) from a client error.
func scrub(err error, u string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		inner := ue.Err
		var ne net.Error
		if errors.As(inner, &ne) && ne.Timeout() {
			return fmt.Errorf("timeout: %w", inner)
		}
		return inner
	}
	return err
}

type httpReader struct {
	src     Source
	cfg     *HTTPConfig
	f       *Fetcher
	pos     httpCheckpoint
	pages   int
	started bool
}

func openHTTP(s Source, cp []byte, o httpOptions) reader {
	h := s.HTTP
	r := &httpReader{src: s, cfg: h}
	r.f = &Fetcher{Client: o.client, Headers: h.Headers, Timeout: time.Duration(h.Timeout),
		MaxRetries: h.MaxRetries, Base: o.base, Max: o.max, Sleep: o.sleep, Now: o.now}
	if r.f.MaxRetries == 0 {
		r.f.MaxRetries = DefaultMaxRetries
	}
	if cp != nil {
		_ = json.Unmarshal(cp, &r.pos)
	}
	if r.pos.Since == "" && h.Pagination.Mode == "since" {
		r.pos.Since = h.Pagination.Start
	}
	return r
}

func (r *httpReader) close() {}

func withParam(raw, k, v string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

func def(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// pageURL is the URL of the next request.
func (r *httpReader) pageURL() string {
	p := r.cfg.Pagination
	switch p.Mode {
	case "next_link":
		if r.pos.Next != "" {
			return r.pos.Next
		}
	case "cursor":
		if r.pos.Cursor != "" {
			return withParam(r.cfg.URL, def(p.CursorParam, "cursor"), r.pos.Cursor)
		}
	case "since":
		if r.pos.Since != "" {
			return withParam(r.cfg.URL, def(p.SinceParam, "since"), r.pos.Since)
		}
	}
	return r.cfg.URL
}

var linkNextRE = regexp.MustCompile(`<([^>]+)>\s*;\s*rel="?next"?`)

func (r *httpReader) next(ctx context.Context) (page, error) {
	var p page
	if r.started && (r.cfg.Pagination.Mode == "" || r.cfg.Pagination.Mode == "none") {
		p.done = true
		return p, nil
	}
	if r.cfg.MaxPages > 0 && r.pages >= r.cfg.MaxPages {
		p.done = true
		return p, nil
	}
	r.started = true
	u := r.pageURL()
	body, hdr, err := r.f.Get(ctx, u)
	if err != nil {
		return p, err
	}
	r.pages++
	env, records, perr := parsePage(body, r.cfg.Format, def(r.cfg.DataField, "data"))
	if perr != nil {
		data := body
		if len(data) > 64<<10 {
			data = data[:64<<10]
		}
		reason := fmt.Sprintf("malformed page %d: %v", r.pages, perr)
		p.bad = []badRecord{{key: redactURL(u), reason: reason, data: data}}
		p.stop = fmt.Errorf("%s at %s; stopped at the last good checkpoint", reason, redactURL(u))
		return p, nil
	}
	p.fetched = len(records)
	pg := r.cfg.Pagination
	sinceField := def(pg.SinceField, "timestamp")
	maxSince := r.pos.Since
	for i, raw := range records {
		var obj map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil || obj == nil {
			p.bad = append(p.bad, badRecord{key: fmt.Sprintf("%s#%d", redactURL(u), i+1),
				reason: fmt.Sprintf("page %d record %d: not a JSON object", r.pages, i+1), data: raw, line: i + 1})
			continue
		}
		if pg.Mode == "since" {
			if v, ok := MapRecord(obj).Get(sinceField); ok {
				if s := fmt.Sprint(v); laterThan(s, maxSince) {
					maxSince = s
				}
			}
		}
		data := []byte(raw)
		if r.src.Mapping != nil {
			data, err = r.src.Mapping.Apply(MapRecord(obj), "", nil)
			if err != nil {
				p.bad = append(p.bad, badRecord{key: fmt.Sprintf("%s#%d", redactURL(u), i+1),
					reason: fmt.Sprintf("page %d record %d: %v", r.pages, i+1, err), data: raw, line: i + 1})
				continue
			}
		}
		p.msgs = append(p.msgs, engine.Message{Data: data, Source: r.src.Name, Line: i + 1})
	}
	var next httpCheckpoint
	switch pg.Mode {
	case "next_link":
		link := ""
		if v, ok := MapRecord(env).Get(def(pg.NextField, "next")); ok && v != nil {
			link = fmt.Sprint(v)
		}
		if link == "" {
			if m := linkNextRE.FindStringSubmatch(hdr.Get("Link")); m != nil {
				link = m[1]
			}
		}
		if link != "" {
			if base, err := url.Parse(u); err == nil {
				if ref, err := url.Parse(link); err == nil {
					link = base.ResolveReference(ref).String()
				}
			}
		}
		if link == "" || link == u {
			// The last page: read it again next run (new records are
			// appended there; re-read ones are duplicates).
			next.Next = u
			p.done = true
		} else {
			next.Next = link
		}
	case "cursor":
		c := ""
		if v, ok := MapRecord(env).Get(def(pg.CursorField, "next_cursor")); ok && v != nil {
			c = fmt.Sprint(v)
		}
		if c == "" || c == r.pos.Cursor {
			next.Cursor = r.pos.Cursor
			p.done = true
		} else {
			next.Cursor = c
		}
	case "since":
		next.Since = maxSince
		if len(records) == 0 || maxSince == r.pos.Since {
			p.done = true
		}
	default:
		p.done = true
	}
	if next != r.pos && next != (httpCheckpoint{}) {
		p.checkpoint, _ = json.Marshal(next)
	}
	r.pos = next
	p.cursor = next.String()
	if t, err := toTime(next.Since); err == nil {
		p.newest = t
	}
	return p, nil
}

// laterThan compares since values as times when both parse, else as
// numbers, else as strings.
func laterThan(a, b string) bool {
	if b == "" {
		return a != ""
	}
	ta, ea := toTime(a)
	tb, eb := toTime(b)
	if ea == nil && eb == nil {
		return ta.After(tb)
	}
	fa, ea := strconv.ParseFloat(a, 64)
	fb, eb := strconv.ParseFloat(b, 64)
	if ea == nil && eb == nil {
		return fa > fb
	}
	return a > b
}

// parsePage splits a response body into records: a JSON array, an object
// with an array at dataField, or NDJSON. env is the object (nil otherwise).
func parsePage(body []byte, format, dataField string) (env map[string]any, records []json.RawMessage, err error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, nil, nil
	}
	if format == "" || format == "auto" || format == "json" {
		switch trimmed[0] {
		case '[':
			if err := json.Unmarshal(trimmed, &records); err != nil {
				return nil, nil, fmt.Errorf("JSON array: %w", err)
			}
			return nil, records, nil
		case '{':
			dec := json.NewDecoder(bytes.NewReader(trimmed))
			dec.UseNumber()
			var obj map[string]any
			derr := dec.Decode(&obj)
			if derr == nil && !dec.More() {
				v, ok := MapRecord(obj).Get(dataField)
				if ok {
					arr, isArr := v.([]any)
					if !isArr && v != nil {
						return nil, nil, fmt.Errorf("%q is %T, not an array", dataField, v)
					}
					for _, e := range arr {
						b, _ := json.Marshal(e)
						records = append(records, b)
					}
					return obj, records, nil
				}
				if format == "json" {
					return nil, nil, fmt.Errorf("object without a %q array", dataField)
				}
			} else if format == "json" {
				if derr == nil {
					derr = errors.New("more than one JSON value")
				}
				return nil, nil, derr
			}
		default:
			if format == "json" {
				return nil, nil, fmt.Errorf("body starts with %q, not JSON", trimmed[0])
			}
		}
	}
	records, err = ndjsonRecords(trimmed)
	return nil, records, err
}

// ndjsonRecords splits NDJSON; every non-blank line must be one JSON object.
func ndjsonRecords(body []byte) ([]json.RawMessage, error) {
	var out []json.RawMessage
	for n, line := range bytes.Split(body, []byte{'\n'}) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if line[0] != '{' || !json.Valid(line) {
			return nil, fmt.Errorf("NDJSON line %d is not a JSON object", n+1)
		}
		out = append(out, json.RawMessage(line))
	}
	return out, nil
}
