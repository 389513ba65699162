package sync

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loupe-cdp/loupe/engine"
)

func TestFileSource(t *testing.T) {
	eng := openEngine(t)
	dir := filepath.Join(eng.Dir(), "in")
	os.MkdirAll(dir, 0o700)
	var nd strings.Builder
	for i := 0; i < 2500; i++ { // more than one batch
		nd.WriteString(track(i) + "\n\n")
	}
	os.WriteFile(filepath.Join(dir, "a.ndjson"), []byte(nd.String()), 0o600)
	os.WriteFile(filepath.Join(dir, "b.json"), []byte("[\n"+track(5000)+",\n"+track(5001)+"]"), 0o600)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(track(6000) + "\n" + `{"type":"track"}` + "\n")) // second is rejected by the engine
	zw.Close()
	os.WriteFile(filepath.Join(dir, "c.ndjson.gz"), gz.Bytes(), 0o600)
	os.WriteFile(filepath.Join(dir, "d.json"), []byte("{\n  \"type\": \"identify\",\n  \"userId\": \"p1\", \"messageId\": \"pretty\"\n}\n"), 0o600)
	writeSources(t, eng.Dir(), `
sources:
  - name: files
    kind: file
    file: {path: in/*}
`)
	r := &Runner{Store: eng}
	res := mustRun(t, r)
	if res.Error != nil || res.Fetched != 2505 || res.Ingested != 2504 || res.Quarantined != 1 {
		t.Fatalf("%+v %v", res, res.Err())
	}
	if res.Cursor != "4 files" {
		t.Errorf("cursor %q", res.Cursor)
	}
	if s := engineStats(t, eng); s.Events != 2504 || s.Rejected != 1 || s.Profiles != 8 {
		t.Fatalf("stats %+v, want 2504 events of 8 users and 1 rejected", s)
	}
	if q := quarantined(t, eng, ""); len(q) != 0 { // the engine's reject is in rejects.ndjson
		t.Errorf("quarantined %+v", q)
	}
	if rej, err := os.ReadFile(filepath.Join(eng.Dir(), engine.RejectsFile)); err != nil || strings.Count(string(rej), "\n") != 1 {
		t.Errorf("rejects file %q %v", rej, err)
	}
	if evs := userEvents(t, eng, "user_id:p1"); len(evs) != 1 || evs[0].MessageID != "pretty" || evs[0].Type != "identify" {
		t.Errorf("pretty-printed JSON object: %+v", evs)
	}
	for u := 0; u < 7; u++ { // track(i) belongs to u(i%7)
		want := 0
		for _, i := range append(seq(0, 2500), 5000, 5001, 6000) {
			if i%7 == u {
				want++
			}
		}
		if n := len(userEvents(t, eng, fmt.Sprintf("user_id:u%d", u))); n != want {
			t.Errorf("u%d: %d events, want %d", u, n, want)
		}
	}
	res = mustRun(t, r)
	if res.Fetched != 0 {
		t.Fatalf("second run read again: %+v", res)
	}
	// same path, new content: read again
	os.WriteFile(filepath.Join(dir, "b.json"), []byte("["+track(5000)+","+track(5001)+","+track(5002)+"]"), 0o600)
	res = mustRun(t, r)
	if res.Fetched != 3 || res.Ingested != 1 || res.Duplicates != 2 {
		t.Fatalf("changed file: %+v", res)
	}
	if s := engineStats(t, eng); s.Events != 2505 {
		t.Fatalf("changed file: %d events, want 2505", s.Events)
	}

	// resume inside a file: a second data dir reading the same files, whose
	// first run stops (context cancelled) after the first committed chunk,
	// 2000 records of a.ndjson
	eng2 := openEngine(t)
	writeSources(t, eng2.Dir(), `
sources:
  - name: files
    kind: file
    file: {path: '`+filepath.Join(dir, "*")+`'}
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r2 := &Runner{Store: eng2, Progress: func(p Progress) {
		if p.Pages == 1 && !p.Done {
			cancel()
		}
	}}
	out, err := r2.Run(ctx, nil)
	if !errors.Is(err, context.Canceled) || len(out) != 1 || out[0].Ingested != 2000 || out[0].Err() == nil {
		t.Fatalf("interrupted run: %+v %v", out, err)
	}
	var cp fileCheckpoint
	if err := json.Unmarshal(checkpoint(t, eng2, "files"), &cp); err != nil {
		t.Fatal(err)
	}
	if len(cp.Files) != 0 || cp.Current == nil || filepath.Base(cp.Current.Path) != "a.ndjson" || cp.Current.Records != 2000 {
		t.Fatalf("checkpoint after the interruption: %+v", cp)
	}
	if s := engineStats(t, eng2); s.Events != 2000 {
		t.Fatalf("interrupted run: %d events, want 2000", s.Events)
	}
	res = mustRun(t, &Runner{Store: eng2}, "files")
	if res.Fetched != 506 || res.Ingested != 505 || res.Duplicates != 0 {
		t.Fatalf("resume: %+v %v", res, res.Err())
	}
	if s := engineStats(t, eng2); s.Events != 2505 {
		t.Fatalf("resume: %d events, want 2505", s.Events)
	}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func TestParseSources(t *testing.T) {
	data, err := os.ReadFile("testdata/sources.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	srcs, err := ParseSources(data, "example")
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 4 {
		t.Fatalf("%d sources", len(srcs))
	}
	bad := map[string]string{
		"literal password": "sources: [{name: a, kind: postgres, postgres: {dsn: 'postgres://u:pw@h/db', table: t, cursor: c, id: id}, mapping: {user_id: id}}]",
		"literal token":    "sources: [{name: a, kind: http, http: {url: 'http://x', headers: {Authorization: 'Bearer abc'}}}]",
		"unknown field":    "sources: [{name: a, kind: file, file: {path: x}, colour: red}]",
		"bad kind":         "sources: [{name: a, kind: ftp}]",
		"dup":              "sources: [{name: a, kind: file, file: {path: x}}, {name: a, kind: file, file: {path: y}}]",
		"track no event":   "sources: [{name: a, kind: file, file: {path: x}, mapping: {type: track, user_id: u}}]",
		"bad interval":     "sources: [{name: a, kind: file, interval: soon, file: {path: x}}]",
		"bad name":         "sources: [{name: 'a/b', kind: file, file: {path: x}}]",
	}
	for name, y := range bad {
		if _, err := ParseSources([]byte(y), name); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	env := map[string]string{"A": "1"}
	look := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if s, err := ExpandEnv("x${A}y$A${A}", look); err != nil || s != "x1y$A1" {
		t.Errorf("%q %v", s, err)
	}
	if _, err := ExpandEnv("${B}", look); err == nil || !strings.Contains(err.Error(), "B is not set") {
		t.Errorf("%v", err)
	}
}
