package sync

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileSource(t *testing.T) {
	st := newMemStore(t)
	dir := filepath.Join(st.dir, "in")
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
	writeSources(t, st.dir, `
sources:
  - name: files
    kind: file
    file: {path: in/*}
`)
	r := &Runner{Store: st}
	res := mustRun(t, r)
	if res.Error != nil || res.Fetched != 2505 || res.Ingested != 2504 || res.Quarantined != 1 {
		t.Fatalf("%+v %v", res, res.Err())
	}
	if res.Cursor != "4 files" {
		t.Errorf("cursor %q", res.Cursor)
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
	// resume inside a file: pretend the crash came after 2000 records of a.ndjson
	st2 := newMemStore(t)
	st2.dir = st.dir
	rd, err := openFile(Source{Name: "files", Kind: KindFile, File: &FileConfig{Path: "in/a.ndjson"}}, st.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := rd.next(context.Background())
	rd.close()
	if len(p.msgs) != 2000 {
		t.Fatalf("first chunk %d", len(p.msgs))
	}
	st2.IngestBatch(context.Background(), p.msgs, nil)
	st2.checkpoints["files"] = p.checkpoint
	res = mustRun(t, &Runner{Store: st2}, "files")
	if res.Fetched != 506 || res.Ingested != 505 || res.Duplicates != 0 {
		t.Fatalf("resume: %+v %v", res, res.Err())
	}
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
