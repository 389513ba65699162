package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/loupe-cdp/loupe/store"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the loupe CLI in-process and captures stdout and stderr.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	oldIn, oldOut, oldErr := os.Stdin, os.Stdout, os.Stderr
	defer func() { os.Stdin, os.Stdout, os.Stderr = oldIn, oldOut, oldErr }()
	inR, inW, _ := os.Pipe()
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	os.Stdin, os.Stdout, os.Stderr = inR, outW, errW
	go func() { io.WriteString(inW, stdin); inW.Close() }()
	var ob, eb bytes.Buffer
	done := make(chan struct{}, 2)
	go func() { io.Copy(&ob, outR); done <- struct{}{} }()
	go func() { io.Copy(&eb, errR); done <- struct{}{} }()
	code = run(context.Background(), args)
	outW.Close()
	errW.Close()
	<-done
	<-done
	return code, ob.String(), eb.String()
}

func TestIngestStdinJSON(t *testing.T) {
	dir := t.TempDir()
	in, err := os.ReadFile("../../testdata/segment-basic.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, string(in), "--data", dir, "ingest", "--json", "-")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	for _, k := range []string{"read", "ingested", "duplicates", "rejected", "profiles_created", "merges", "refused_merges", "elapsed_ms"} {
		if _, ok := got[k]; !ok {
			t.Errorf("ingest JSON lacks %q: %s", k, out)
		}
	}
	if got["ingested"].(float64) != 31 {
		t.Fatalf("ingested %v", got["ingested"])
	}
}

func TestIngestRejectsExitCode(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runCLI(t, "", "--data", dir, "ingest", "../../testdata/segment-bad.ndjson")
	if code != ExitRejected {
		t.Fatalf("exit %d, want %d", code, ExitRejected)
	}
	if !strings.Contains(errOut, "segment-bad.ndjson:4: field \"type\": unknown type") {
		t.Fatalf("stderr lacks file:line reason:\n%s", errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "rejects.ndjson")); err != nil {
		t.Fatal(err)
	}
}

func TestProfileShowJSONAndNotFound(t *testing.T) {
	dir := t.TempDir()
	if code, _, e := runCLI(t, "", "--data", dir, "ingest", "../../testdata/segment-basic.ndjson"); code != 0 {
		t.Fatalf("ingest: %d %s", code, e)
	}
	code, out, _ := runCLI(t, "", "--data", dir, "profile", "show", "--json", "email:ANN.LEE@example.com")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "merged_ids", "identities", "traits", "events", "first_seen", "last_seen"} {
		if _, ok := p[k]; !ok {
			t.Errorf("profile JSON lacks %q", k)
		}
	}
	// Stable shape: lists are arrays, never null, including each trait's
	// history.
	for _, k := range []string{"merged_ids", "identities", "blocked"} {
		if _, ok := p[k].([]any); !ok {
			t.Errorf("profile JSON %q is %T, want an array", k, p[k])
		}
	}
	for name, tr := range p["traits"].(map[string]any) {
		if _, ok := tr.(map[string]any)["history"].([]any); !ok {
			t.Errorf("trait %s history is not an array", name)
		}
	}
	code, _, errOut := runCLI(t, "", "--data", dir, "profile", "show", "user_id:nobody")
	if code != ExitNotFound || !strings.Contains(errOut, "no profile has user_id:nobody") {
		t.Fatalf("not found: exit %d, %q", code, errOut)
	}
	if code, _, _ := runCLI(t, "", "--data", dir, "profile", "show", "garbage"); code != ExitUsage {
		t.Fatalf("bad ref: exit %d", code)
	}
	code, out, _ = runCLI(t, "", "--data", dir, "why", "--json", "user_id:user-carla", "user_id:user-dan")
	var why struct {
		Connected bool              `json:"connected"`
		Path      []json.RawMessage `json:"path"`
		Refused   []struct {
			MessageID string   `json:"message_id"`
			Reason    string   `json:"reason"`
			Dropped   []string `json:"dropped"`
		} `json:"refused"`
	}
	if err := json.Unmarshal([]byte(out), &why); err != nil || code != 0 {
		t.Fatalf("why: %d %v %s", code, err, out)
	}
	if why.Connected || len(why.Refused) == 0 || why.Refused[0].MessageID == "" {
		t.Fatalf("why JSON: %s", out)
	}
	code, out, _ = runCLI(t, "", "--data", dir, "stats", "--json")
	var st map[string]any
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 {
		t.Fatal(err)
	}
	for _, k := range []string{"profiles", "events", "identifiers", "merges", "refused_merges", "blocked", "rejected"} {
		if _, ok := st[k]; !ok {
			t.Errorf("stats JSON lacks %q", k)
		}
	}
}

func TestLockedDirExitCode(t *testing.T) {
	dir := t.TempDir()
	g := &globalFlags{data: dir}
	e, err := g.openEngine()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	code, _, errOut := runCLI(t, "", "--data", dir, "stats")
	if code != ExitDataDir || !strings.Contains(errOut, "in use by another Loupe process") {
		t.Fatalf("exit %d: %q", code, errOut)
	}
	if n := strings.Count(strings.TrimSpace(errOut), "\n"); n != 0 {
		t.Fatalf("error is %d lines", n+1)
	}
}

func TestDemoNoTUI(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCLI(t, "", "demo", "--no-tui", "--profiles", "300", "--data", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, dir) || !strings.Contains(out, "profiles created") {
		t.Fatalf("demo output:\n%s", out)
	}
}

// demo --out writes the dataset instead of ingesting it; ingesting the
// file gives the store demo itself builds.
func TestDemoOut(t *testing.T) {
	file := filepath.Join(t.TempDir(), "demo.ndjson.gz")
	code, out, errOut := runCLI(t, "", "demo", "--profiles", "300", "--out", file)
	if code != 0 || !strings.Contains(out, file) {
		t.Fatalf("demo --out: exit %d: %s%s", code, out, errOut)
	}
	data, err := os.ReadFile(file)
	if err != nil || len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		t.Fatalf("%s is not gzip: %v", file, err)
	}
	stats := func(dir string) string {
		t.Helper()
		code, out, errOut := runCLI(t, "", "--data", dir, "stats", "--json")
		if code != 0 {
			t.Fatalf("stats: exit %d: %s", code, errOut)
		}
		return out
	}
	fromFile, direct := t.TempDir(), t.TempDir()
	if code, _, errOut := runCLI(t, "", "--data", fromFile, "ingest", file); code != 0 {
		t.Fatalf("ingest %s: exit %d: %s", file, code, errOut)
	}
	if code, _, errOut := runCLI(t, "", "demo", "--no-tui", "--profiles", "300", "--data", direct); code != 0 {
		t.Fatalf("demo: exit %d: %s", code, errOut)
	}
	if a, b := stats(fromFile), stats(direct); a != b || !strings.Contains(a, `"events": 2292`) {
		t.Fatalf("stats after ingesting the file:\n%s\nafter demo:\n%s", a, b)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(file), "badger")); err == nil {
		t.Error("demo --out opened a data dir beside the file")
	}
	// A file that cannot take the data is an error naming it, not a
	// summary of data that was lost.
	if _, err := os.Stat("/dev/full"); err == nil {
		code, out, errOut := runCLI(t, "", "demo", "--profiles", "300", "--out", "/dev/full")
		if code != ExitFailure || !strings.Contains(errOut, "/dev/full") || strings.Contains(out, "Wrote") {
			t.Errorf("demo --out /dev/full: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	}
}

func TestEncryptionKeyFile(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	if code, _, e := runCLI(t, "", "--data", dir, "--encryption-key-file", keyFile, "ingest", "../../testdata/segment-basic.ndjson"); code != 0 {
		t.Fatalf("encrypted ingest: %d %s", code, e)
	}
	code, _, errOut := runCLI(t, "", "--data", dir, "stats")
	if code != ExitDataDir || !strings.Contains(errOut, "encryption key") {
		t.Fatalf("open without key: %d %q", code, errOut)
	}
}

// verify exits 0 on intact chains and 1, naming the break, after one byte
// of a stored consent record changes.
func TestVerifyExitCodes(t *testing.T) {
	dir := t.TempDir()
	if code, _, e := runCLI(t, "", "--data", dir, "ingest", "../../testdata/segment-basic.ndjson"); code != 0 {
		t.Fatalf("ingest: %d %s", code, e)
	}
	for _, args := range [][]string{{"consent", "verify"}, {"audit", "verify"}} {
		if code, out, e := runCLI(t, "", append([]string{"--data", dir}, args...)...); code != ExitOK {
			t.Fatalf("%v on intact chains: exit %d\n%s%s", args, code, out, e)
		}
	}
	db, err := store.Open(store.BadgerDir(dir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *store.Txn) error {
		var key, val []byte
		if err := tx.Iterate([]byte{store.PrefixConsent}, store.IterOptions{}, func(k, v []byte) error {
			key, val = append([]byte(nil), k...), v
			return store.ErrStop
		}); err != nil {
			return err
		}
		if key == nil {
			t.Fatal("no consent record to tamper with")
		}
		val[len(val)/2] ^= 0x01
		return tx.Set(key, val)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCLI(t, "", "--data", dir, "consent", "verify", "--json")
	if code != ExitFailure || !strings.Contains(out, `"ok": false`) || !strings.Contains(out, `"breaks": [`) {
		t.Fatalf("tampered chain: exit %d\n%s", code, out)
	}
}
