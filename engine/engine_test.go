package engine

import (
	"bytes"
	"compress/gzip"
	"context"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loupe-cdp/loupe/engine/identity"
	"github.com/loupe-cdp/loupe/store"
)

var fixedNow = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func openTest(t *testing.T) *Engine {
	t.Helper()
	return openDir(t, t.TempDir())
}

func openDir(t *testing.T, dir string) *Engine {
	t.Helper()
	e, err := Open(dir, Options{Now: func() time.Time { return fixedNow }, Actor: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func ingestString(t *testing.T, e *Engine, ndjson string) IngestStats {
	t.Helper()
	st, err := e.IngestReader(context.Background(), strings.NewReader(ndjson), "test", IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func ingestFixture(t *testing.T, e *Engine, name string) IngestStats {
	t.Helper()
	st, err := e.IngestFiles(context.Background(), []string{filepath.Join("..", "testdata", name)}, IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func mustProfile(t *testing.T, e *Engine, ref string) *Profile {
	t.Helper()
	p, err := e.Profile(context.Background(), ref)
	if err != nil {
		t.Fatalf("profile %s: %v", ref, err)
	}
	return p
}

func hasIdentity(p *Profile, typ, value string) bool {
	for _, id := range p.Identities {
		if id.Type == typ && id.Value == value {
			return true
		}
	}
	return false
}

func TestReingestChangesNothing(t *testing.T) {
	e := openTest(t)
	first := ingestFixture(t, e, "segment-basic.ndjson")
	if first.Ingested != 31 || first.Rejected != 0 {
		t.Fatalf("first ingest: %+v", first)
	}
	before, _ := e.Stats(context.Background())
	ann := mustProfile(t, e, "user_id:user-ann")
	again := ingestFixture(t, e, "segment-basic.ndjson")
	if again.Ingested != 0 || again.Duplicates != 31 || again.ProfilesCreated != 0 {
		t.Fatalf("re-ingest: %+v", again)
	}
	after, _ := e.Stats(context.Background())
	if before.Profiles != after.Profiles || before.Events != after.Events || before.Merges != after.Merges {
		t.Fatalf("stats changed: %+v -> %+v", before, after)
	}
	if ann2 := mustProfile(t, e, "user_id:user-ann"); ann2.EventCount != ann.EventCount {
		t.Fatalf("Ann's events changed: %d -> %d", ann.EventCount, ann2.EventCount)
	}
	// The gzip copy holds the same messages: all duplicates, and the
	// message without messageId derives the same id.
	gz := ingestFixture(t, e, "segment-basic.ndjson.gz")
	if gz.Read != 31 || gz.Duplicates != 31 {
		t.Fatalf("gzip re-ingest: %+v", gz)
	}
}

func TestGzipIngest(t *testing.T) {
	e := openTest(t)
	st := ingestFixture(t, e, "segment-basic.ndjson.gz")
	if st.Ingested != 31 {
		t.Fatalf("gzip: %+v", st)
	}
	if p := mustProfile(t, e, "email:ann.lee@example.com"); !hasIdentity(p, "user_id", "user-ann") {
		t.Fatalf("gzip ingest did not build Ann: %+v", p.Identities)
	}
}

func TestArrayAndBatchFormats(t *testing.T) {
	e := openTest(t)
	if st := ingestFixture(t, e, "segment-array.json"); st.Ingested != 6 {
		t.Fatalf("array: %+v", st)
	}
	if st := ingestFixture(t, e, "segment-batch.json"); st.Ingested != 3 {
		t.Fatalf("batch: %+v", st)
	}
}

func TestSharedDeviceRefusesTwoUserIDs(t *testing.T) {
	e := openTest(t)
	ingestFixture(t, e, "segment-basic.ndjson")
	carla := mustProfile(t, e, "user_id:user-carla")
	dan := mustProfile(t, e, "user_id:user-dan")
	if carla.ID == dan.ID {
		t.Fatal("Carla and Dan were merged through the shared iPad")
	}
	res, err := e.Why(context.Background(), "user_id:user-carla", "user_id:user-dan")
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected || len(res.Refused) == 0 {
		t.Fatalf("why: %+v", res)
	}
	r := res.Refused[0]
	if !strings.Contains(r.Reason, "user_id limit 1") || r.MessageID == "" {
		t.Fatalf("refused merge lacks rule or event: %+v", r)
	}
	if !contains(r.Dropped, "anonymous_id:anon-family-ipad") {
		t.Fatalf("dropped %v, want the family iPad's anonymous id", r.Dropped)
	}
	st, _ := e.Stats(context.Background())
	if st.RefusedMerges < 1 {
		t.Fatalf("refused merges not counted: %+v", st)
	}
}

// A refused merge names each other profile it kept apart once, however many
// of the dropped identifiers that profile held.
func TestRefusedMergeNamesOtherProfileOnce(t *testing.T) {
	e := openTest(t)
	ingestString(t, e, `{"type":"identify","messageId":"1","userId":"u1","anonymousId":"a1","context":{"device":{"id":"d1"}}}
{"type":"identify","messageId":"2","userId":"u2","anonymousId":"a1","context":{"device":{"id":"d1"}}}
`)
	u1 := mustProfile(t, e, "user_id:u1")
	pid1, _ := parsePID(u1.ID)
	err := e.db.View(func(t2 *store.Txn) error {
		rec, err := e.refusedRecord(t2, 1)
		if err != nil {
			return err
		}
		if len(rec.Dropped) != 2 || !slices.Equal(rec.Others, []uint64{pid1}) {
			t.Errorf("refused merge dropped %v, others %v; want two dropped, others [%d]", rec.Dropped, rec.Others, pid1)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestBlockedValuesNeverMerge(t *testing.T) {
	e := openTest(t)
	st := ingestString(t, e, `{"type":"identify","messageId":"m1","userId":"null","anonymousId":"a1","traits":{"email":"test@test.com"}}
{"type":"identify","messageId":"m2","userId":"null","anonymousId":"a2","traits":{"email":"TEST@test.com"}}
{"type":"track","messageId":"m3","userId":"u1","anonymousId":"00000000-0000-0000-0000-000000000000","event":"X"}
{"type":"track","messageId":"m4","userId":"u2","anonymousId":"00000000-0000-0000-0000-000000000000","event":"X"}
{"type":"page","messageId":"m5","userId":"undefined"}
`)
	if st.Merges != 0 {
		t.Fatalf("blocked values merged profiles: %+v", st)
	}
	if st.Rejected != 1 {
		t.Fatalf("an event with only blocked identifiers must be rejected: %+v", st)
	}
	a1, a2 := mustProfile(t, e, "anonymous_id:a1"), mustProfile(t, e, "anonymous_id:a2")
	if a1.ID == a2.ID {
		t.Fatal("a1 and a2 merged through a blocked user_id/email")
	}
	if len(a1.Blocked) != 2 {
		t.Fatalf("blocked identifiers not recorded on the profile: %+v", a1.Blocked)
	}
	if _, err := e.Profile(context.Background(), "user_id:null"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("user_id:null is an identifier: %v", err)
	}
	if u1, u2 := mustProfile(t, e, "user_id:u1"), mustProfile(t, e, "user_id:u2"); u1.ID == u2.ID {
		t.Fatal("u1 and u2 merged through the zero anonymous id")
	}
	s, _ := e.Stats(context.Background())
	if s.Blocked != 7 {
		t.Fatalf("blocked count %d, want 7", s.Blocked)
	}
}

func TestNewestTraitWinsOutOfOrder(t *testing.T) {
	e := openTest(t)
	ingestFixture(t, e, "segment-basic.ndjson")
	ben := mustProfile(t, e, "user_id:user-ben")
	plan := ben.Traits["plan"]
	if plan.Value != "pro" {
		t.Fatalf("plan = %v, want pro (the older identify arrived later)", plan.Value)
	}
	if len(plan.History) == 0 || plan.History[0].Value != "free" {
		t.Fatalf("the older value must be kept as history: %+v", plan.History)
	}
	if plan.MessageID == "" || plan.Time.IsZero() {
		t.Fatalf("trait provenance missing: %+v", plan)
	}
}

func TestNewestTraitWinsEitherOrder(t *testing.T) {
	newer := `{"type":"identify","messageId":"n","userId":"u","timestamp":"2026-10-02T00:00:00Z","traits":{"plan":"pro"}}` + "\n"
	older := `{"type":"identify","messageId":"o","userId":"u","timestamp":"2026-10-01T00:00:00Z","traits":{"plan":"free"}}` + "\n"
	for _, order := range []string{newer + older, older + newer} {
		e := openTest(t)
		ingestString(t, e, order)
		p := mustProfile(t, e, "user_id:u")
		if p.Traits["plan"].Value != "pro" || p.Traits["plan"].MessageID != "n" {
			t.Fatalf("plan %+v", p.Traits["plan"])
		}
	}
}

func TestWhyChain(t *testing.T) {
	e := openTest(t)
	ingestString(t, e, `{"type":"page","messageId":"p1","anonymousId":"a1","context":{"device":{"id":"d1"}}}
{"type":"identify","messageId":"i1","anonymousId":"a1","userId":"u1","traits":{"email":"Ann@Example.com"}}
{"type":"page","messageId":"p2","anonymousId":"a2","context":{"traits":{"email":"ann@example.com"}}}
`)
	res, err := e.Why(context.Background(), "device_id:d1", "anonymous_id:a2")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Connected || len(res.Path) < 2 {
		t.Fatalf("why: %+v", res)
	}
	msgs := map[string]bool{}
	for _, l := range res.Path {
		msgs[l.MessageID] = true
		if l.Time.IsZero() {
			t.Fatalf("link without time: %+v", l)
		}
	}
	if !msgs["p2"] {
		t.Fatalf("path %+v does not name the event that joined a2 (p2)", res.Path)
	}
	if res.Path[0].From != "device_id:d1" || res.Path[len(res.Path)-1].To != "anonymous_id:a2" {
		t.Fatalf("path endpoints: %+v", res.Path)
	}
	// Normalised REFs: the email in any case resolves.
	if _, err := e.Why(context.Background(), "email: ANN@example.com ", "user_id:u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Why(context.Background(), "user_id:nobody", "user_id:u1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown identifier: %v", err)
	}
}

func TestMergeKeepsOlderIDAndMergedIDResolves(t *testing.T) {
	e := openTest(t)
	ingestString(t, e, `{"type":"page","messageId":"1","anonymousId":"a1","timestamp":"2026-10-01T00:00:00Z"}
{"type":"identify","messageId":"2","userId":"u1","timestamp":"2026-10-02T00:00:00Z","traits":{"plan":"pro"}}
{"type":"alias","messageId":"3","userId":"u1","previousId":"a1","timestamp":"2026-10-03T00:00:00Z"}
`)
	p := mustProfile(t, e, "user_id:u1")
	if p.ID != "p1" {
		t.Fatalf("survivor %s, want the older p1", p.ID)
	}
	if len(p.MergedIDs) != 1 || p.MergedIDs[0] != "p2" {
		t.Fatalf("merged ids %v", p.MergedIDs)
	}
	if got := mustProfile(t, e, "p2"); got.ID != "p1" {
		t.Fatalf("merged-away p2 resolves to %s", got.ID)
	}
	if p.EventCount != 3 || p.Traits["plan"].Value != "pro" {
		t.Fatalf("merged profile: count %d traits %+v", p.EventCount, p.Traits)
	}
	page, err := e.Events(context.Background(), "p2", "", 10)
	if err != nil || len(page.Events) != 3 {
		t.Fatalf("events through merged id: %v %+v", err, page)
	}
	if page.Events[0].MessageID != "3" || page.Events[2].MessageID != "1" {
		t.Fatalf("events not newest first: %+v", page.Events)
	}
	st, _ := e.Stats(context.Background())
	if st.Profiles != 1 || st.Merges != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMergedIdentifiersResolveAfterReopen(t *testing.T) {
	// The alias merges p2 (u1's profile) into p1. The stored index keeps
	// naming p2 for u1; every reader follows p2's merged-id key to p1,
	// ingest after a reopen (when the index is read from the store) too.
	dir := t.TempDir()
	e := openDir(t, dir)
	ingestString(t, e, `{"type":"page","messageId":"1","anonymousId":"a1","timestamp":"2026-10-01T00:00:00Z"}
{"type":"identify","messageId":"2","userId":"u1","timestamp":"2026-10-02T00:00:00Z","traits":{"plan":"pro"}}
{"type":"alias","messageId":"3","userId":"u1","previousId":"a1","timestamp":"2026-10-03T00:00:00Z"}
`)
	e.Close()
	e = openDir(t, dir)
	e.db.View(func(tx *store.Txn) error {
		pid, found, err := e.ownerOf(tx, identity.ID{Type: "user_id", Value: "u1"})
		if err != nil || !found || pid != 2 {
			t.Errorf("stored owner of u1: %d %v %v, want p2 as the identify left it", pid, found, err)
		}
		return nil
	})
	if p := mustProfile(t, e, "user_id:u1"); p.ID != "p1" {
		t.Errorf("user_id:u1 resolves to %s, want p1", p.ID)
	}
	if m, err := e.SearchIdentifiers(context.Background(), "user_id:u", 10); err != nil || len(m) != 1 || m[0].ProfileID != "p1" {
		t.Errorf("search: %+v %v", m, err)
	}
	if w, err := e.Why(context.Background(), "user_id:u1", "anonymous_id:a1"); err != nil || !w.Connected {
		t.Errorf("why: %+v %v", w, err)
	}
	st := ingestString(t, e, `{"type":"track","event":"Order Completed","messageId":"4","userId":"u1","timestamp":"2026-10-04T00:00:00Z"}
`)
	if st.ProfilesCreated != 0 || st.Merges != 0 {
		t.Errorf("an event of u1 after reopen: %+v, want it on p1", st)
	}
	if p := mustProfile(t, e, "p1"); p.EventCount != 4 {
		t.Errorf("p1 has %d events, want 4", p.EventCount)
	}
}

func TestEventsPaging(t *testing.T) {
	e := openTest(t)
	var b strings.Builder
	for i := range 25 {
		b.WriteString(`{"type":"track","event":"E","userId":"u","messageId":"m` + itoa(i) + `","timestamp":"2026-10-01T00:00:` + pad(i) + `Z"}` + "\n")
	}
	ingestString(t, e, b.String())
	var all []string
	cursor := ""
	for {
		page, err := e.Events(context.Background(), "user_id:u", cursor, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Events {
			all = append(all, ev.MessageID)
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if len(all) != 25 || all[0] != "m24" || all[24] != "m0" {
		t.Fatalf("paged events: %v", all)
	}
}

func itoa(i int) string {
	return strings.TrimLeft(pad(i), "0") + map[bool]string{true: "0", false: ""}[i == 0]
}
func pad(i int) string { return string([]byte{byte('0' + i/10), byte('0' + i%10)}) }

func TestUnmerge(t *testing.T) {
	e := openTest(t)
	// A shared kiosk device joined two people before anyone noticed.
	ingestString(t, e, `{"type":"identify","messageId":"1","userId":"u1","anonymousId":"kiosk","timestamp":"2026-10-01T00:00:00Z","traits":{"email":"one@example.com","plan":"pro"}}
{"type":"track","messageId":"2","anonymousId":"kiosk","event":"Viewed","timestamp":"2026-10-02T00:00:00Z"}
{"type":"identify","messageId":"3","anonymousId":"kiosk","timestamp":"2026-10-03T00:00:00Z","traits":{"email":"two@example.com","plan":"free"}}
{"type":"track","messageId":"4","anonymousId":"other","traits":{},"context":{"traits":{"email":"two@example.com"}},"event":"Opened","timestamp":"2026-10-04T00:00:00Z"}
`)
	p := mustProfile(t, e, "email:two@example.com")
	if p.ID != mustProfile(t, e, "user_id:u1").ID {
		t.Fatal("setup: expected one profile")
	}
	res, err := e.Unmerge(context.Background(), "anonymous_id:kiosk")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Profiles) < 2 || res.From != p.ID {
		t.Fatalf("unmerge result %+v", res)
	}
	u1 := mustProfile(t, e, "user_id:u1")
	two := mustProfile(t, e, "email:two@example.com")
	kiosk := mustProfile(t, e, "anonymous_id:kiosk")
	if u1.ID == two.ID || u1.ID == kiosk.ID {
		t.Fatalf("after unmerge: u1 %s, two %s, kiosk %s", u1.ID, two.ID, kiosk.ID)
	}
	if u1.ID != p.ID {
		t.Fatalf("the largest group keeps the id: u1 is %s, was %s", u1.ID, p.ID)
	}
	if !hasIdentity(u1, "email", "one@example.com") || hasIdentity(u1, "email", "two@example.com") {
		t.Fatalf("u1 identities %+v", u1.Identities)
	}
	// Every event went somewhere, once.
	total := int64(0)
	for _, id := range []string{u1.ID, two.ID, kiosk.ID} {
		if id == two.ID && id == kiosk.ID {
			continue
		}
		total += mustProfile(t, e, id).EventCount
	}
	if kiosk.ID == two.ID {
		total -= two.EventCount
	}
	if total != 4 {
		t.Fatalf("events after unmerge add up to %d, want 4", total)
	}
	if r, _ := e.Why(context.Background(), "user_id:u1", "anonymous_id:kiosk"); r.Connected {
		t.Fatal("links through the detached identifier survived")
	}
	// The links that remain went with their groups, the new profile's too.
	for _, c := range [][3]string{{"user_id:u1", "email:one@example.com", "1"}, {"email:two@example.com", "anonymous_id:other", "4"}} {
		r, err := e.Why(context.Background(), c[0], c[1])
		if err != nil || !r.Connected || len(r.Path) != 1 || r.Path[0].MessageID != c[2] {
			t.Errorf("why %s %s after unmerge: %+v %v", c[0], c[1], r, err)
		}
	}
	st, _ := e.Stats(context.Background())
	if st.Profiles != int64(len(res.Profiles)) {
		t.Fatalf("profile count %d, want %d", st.Profiles, len(res.Profiles))
	}
}

func TestRejectsWithLineNumbers(t *testing.T) {
	e := openTest(t)
	var seen []string
	st, err := e.IngestFiles(context.Background(), []string{"../testdata/segment-bad.ndjson"}, IngestOptions{
		OnReject: func(src string, line int, reason string) { seen = append(seen, src+":"+itoa(line)+": "+reason) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Rejected != 5 || st.Ingested != 3 {
		t.Fatalf("stats %+v; rejects %v", st, seen)
	}
	data, err := os.ReadFile(filepath.Join(e.Dir(), RejectsFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"line":2`, `"line":4`, `"line":5`, `"line":6`, `"line":7`, "unknown type", "track without event", "malformed timestamp"} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("rejects file lacks %s:\n%s", want, data)
		}
	}
	if !strings.HasPrefix(seen[0], "../testdata/segment-bad.ndjson:2: ") {
		t.Fatalf("first reject %q", seen[0])
	}
}

// TestRejectsFileIsNDJSON: every line of the rejects file is JSON, even
// for messages that goccy/go-json takes for valid JSON and encoding/json
// does not; the rejected bytes are kept as text then.
func TestRejectsFileIsNDJSON(t *testing.T) {
	e := openTest(t)
	in := "{\"type\":\"identify\",\"userId\":\"u1\",\"traits\":{\"n\":007}}\n" +
		"{\"type\":\"group\",\"userId\":\"u2\",\"traits\":{\"\x12\":\"\"}}\n" +
		"{\"type\":\"purchase\",\"userId\":\"u3\"}\n"
	st, err := e.IngestReader(context.Background(), strings.NewReader(in), "odd", IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Rejected != 3 {
		t.Fatalf("stats %+v", st)
	}
	data, err := os.ReadFile(filepath.Join(e.Dir(), RejectsFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	if len(lines) != 3 {
		t.Fatalf("%d lines in the rejects file:\n%s", len(lines), data)
	}
	for i, l := range lines {
		var r struct {
			Line int                `json:"line"`
			Data stdjson.RawMessage `json:"data"`
			Text string             `json:"text"`
		}
		if err := stdjson.Unmarshal(l, &r); err != nil {
			t.Fatalf("rejects line %d is not JSON (%v): %s", i+1, err, l)
		}
		if r.Line != i+1 || (len(r.Data) == 0) == (r.Text == "") {
			t.Errorf("rejects line %d: %s", i+1, l)
		}
	}
}

func TestHostileBytesNeverPanic(t *testing.T) {
	e := openTest(t)
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte("{\"type\":\"track\"\x00\xff\n[1,2,\n{}\n\"x\"\n{\"type\":\"identify\",\"userId\":{\"a\":1}}\n"))
	zw.Close()
	for _, in := range [][]byte{b.Bytes(), b.Bytes()[:10], []byte("\xff\xfe\x00"), []byte("[[[[[[[[[["), []byte(strings.Repeat("{", 10000))} {
		st, err := e.IngestReader(context.Background(), bytes.NewReader(in), "hostile", IngestOptions{})
		if err == nil && st.Ingested != 0 {
			t.Fatalf("hostile input ingested events: %+v", st)
		}
	}
}

func TestEncryptedDir(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{7}, 32)
	e, err := Open(dir, Options{EncryptionKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.IngestFiles(context.Background(), []string{"../testdata/segment-basic.ndjson"}, IngestOptions{}); err != nil {
		t.Fatal(err)
	}
	e.Close()
	if _, err := Open(dir, Options{}); !errors.Is(err, store.ErrEncryptionKey) {
		t.Fatalf("open without key: %v", err)
	}
	if _, err := Open(dir, Options{EncryptionKey: bytes.Repeat([]byte{8}, 32)}); !errors.Is(err, store.ErrEncryptionKey) {
		t.Fatalf("open with wrong key: %v", err)
	}
	e, err = Open(dir, Options{EncryptionKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if p, err := e.Profile(context.Background(), "user_id:user-ann"); err != nil || p.EventCount == 0 {
		t.Fatalf("read back: %v", err)
	}
	// The plaintext must not be on disk.
	filepath.Walk(filepath.Join(dir, "badger"), func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte("ann.lee@example.com")) {
			t.Errorf("plaintext email in %s", path)
		}
		return nil
	})
}

func TestLockedDir(t *testing.T) {
	dir := t.TempDir()
	e := openDir(t, dir)
	_ = e
	_, err := Open(dir, Options{})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "Badger") {
		t.Fatalf("error is not one clear line: %q", err)
	}
}

func TestSearchIdentifiers(t *testing.T) {
	e := openTest(t)
	ingestFixture(t, e, "segment-basic.ndjson")
	m, err := e.SearchIdentifiers(context.Background(), "ANN", 10)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, x := range m {
		if x.Type == "email" && x.Value == "ann.lee@example.com" {
			found = true
		}
	}
	if !found {
		t.Fatalf("search ANN: %+v", m)
	}
	m, _ = e.SearchIdentifiers(context.Background(), "user_id:user-", 100)
	for _, x := range m {
		if x.Type != "user_id" {
			t.Fatalf("typed search returned %+v", x)
		}
	}
	if len(m) < 4 {
		t.Fatalf("user_id search: %+v", m)
	}
}

func TestProfileIndexLastSeen(t *testing.T) {
	e := openTest(t)
	ingestFixture(t, e, "segment-basic.ndjson")
	ix, err := e.ProfileIndex(context.Background(), ProfileQuery{})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := e.Stats(context.Background())
	if int64(ix.Len()) != st.Profiles {
		t.Fatalf("index has %d, stats %d", ix.Len(), st.Profiles)
	}
	rows, err := e.Summaries(context.Background(), ix.IDs(0, ix.Len()))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(rows); i++ {
		if rows[i].LastSeen.After(rows[i-1].LastSeen) {
			t.Fatalf("not newest first at %d: %v after %v", i, rows[i].LastSeen, rows[i-1].LastSeen)
		}
	}
}

// The in-memory identity index is keyed by a digest of type and value: the
// same value under two types is two identifiers, in the process that wrote
// them and in a later one that reads the index from the store.
func TestIdentityIndexKeepsTypesApart(t *testing.T) {
	dir := t.TempDir()
	e := openDir(t, dir)
	ingestString(t, e, `{"type":"identify","messageId":"1","userId":"x"}
{"type":"track","messageId":"2","anonymousId":"x","event":"Ping"}
`)
	byUser, byAnon := mustProfile(t, e, "user_id:x"), mustProfile(t, e, "anonymous_id:x")
	if byUser.ID == byAnon.ID {
		t.Fatalf("user_id:x and anonymous_id:x share %s", byUser.ID)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openDir(t, dir)
	ingestString(t, e, `{"type":"track","messageId":"3","anonymousId":"x","event":"Ping"}
{"type":"track","messageId":"4","userId":"x","event":"Ping"}
`)
	if got := mustProfile(t, e, "anonymous_id:x"); got.ID != byAnon.ID || got.EventCount != 2 {
		t.Fatalf("anonymous_id:x after reopening: %s with %d events, want %s with 2", got.ID, got.EventCount, byAnon.ID)
	}
	if got := mustProfile(t, e, "user_id:x"); got.ID != byUser.ID || got.EventCount != 2 {
		t.Fatalf("user_id:x after reopening: %s with %d events, want %s with 2", got.ID, got.EventCount, byUser.ID)
	}
}

func TestRecentProfiles(t *testing.T) {
	e := openTest(t)
	ingestFixture(t, e, "segment-basic.ndjson")
	ctx := context.Background()
	ix, err := e.ProfileIndex(ctx, ProfileQuery{})
	if err != nil {
		t.Fatal(err)
	}
	ids, total, err := e.RecentProfiles(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if total != ix.Len() || !slices.Equal(ids, ix.IDs(0, 3)) {
		t.Fatalf("recent %v of %d; the full index starts %v of %d", ids, total, ix.IDs(0, 3), ix.Len())
	}
}

// Stats answers while a writer holds the engine (a long ingest or sync):
// the workbench header must not wait for it.
func TestStatsDoesNotWaitForWriters(t *testing.T) {
	e := openTest(t)
	ingestFixture(t, e, "segment-basic.ndjson")
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	done := make(chan Stats, 1)
	go func() {
		st, _ := e.Stats(context.Background())
		done <- st
	}()
	select {
	case st := <-done:
		if st.Events != 31 {
			t.Fatalf("stats %+v", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stats waited for the writer lock")
	}
}

// manyPeople is n people, each with an identify, two tracks and a consent
// decision, time-ordered per person: enough to span several units.
func manyPeople(n int) string {
	var b strings.Builder
	for i := range n {
		at := ct0.Add(time.Duration(i) * time.Minute)
		uid := fmt.Sprintf("u%03d", i)
		b.WriteString(msg("id-"+uid, "identify", at, map[string]any{"userId": uid, "anonymousId": "a-" + uid,
			"traits": map[string]any{"email": uid + "@example.com"}}))
		b.WriteString(msg("v-"+uid, "track", at.Add(time.Second), map[string]any{"anonymousId": "a-" + uid, "event": "Viewed"}))
		b.WriteString(consentUpdated("c-"+uid, "user_id:"+uid, at.Add(2*time.Second), "analytics", "granted", nil))
		b.WriteString(msg("o-"+uid, "track", at.Add(3*time.Second), map[string]any{"userId": uid, "event": "Order Completed",
			"properties": map[string]any{"revenue": 10}}))
	}
	return b.String()
}

func TestStatsCountIdentifiersOnce(t *testing.T) {
	// Over several units, in memory and as stored: each person has one
	// identifier of each type. (The in-memory totals once shared a map
	// with the unit being committed and counted every unit twice.)
	dir := t.TempDir()
	e := openDir(t, dir)
	e.unitEvents = 100
	ingestString(t, e, manyPeople(150))
	want := map[string]int64{"anonymous_id": 150, "email": 150, "user_id": 150}
	st, _ := e.Stats(context.Background())
	if fmt.Sprint(st.Identifiers) != fmt.Sprint(want) {
		t.Errorf("in memory: %v, want %v", st.Identifiers, want)
	}
	e.Close()
	e = openDir(t, dir)
	st, _ = e.Stats(context.Background())
	if fmt.Sprint(st.Identifiers) != fmt.Sprint(want) {
		t.Errorf("stored: %v, want %v", st.Identifiers, want)
	}
}

// A unit with more writes than Badger takes in one transaction is committed
// in parts, and nothing is lost (the engine's units stay far below the
// limit; this one is made huge on purpose).
func TestUnitPastBadgerLimitCommitsInParts(t *testing.T) {
	if testing.Short() {
		t.Skip("ingests 60,000 events")
	}
	e := openTest(t)
	e.unitEvents = 1 << 20
	const n = 60_000
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"type":"identify","messageId":"m%d","userId":"u%d","anonymousId":"a%d","traits":{"email":"p%d@example.com"}}`+"\n", i, i, i, i)
	}
	st := ingestString(t, e, b.String())
	if st.Ingested != n || st.ProfilesCreated != n {
		t.Fatalf("ingested %d, created %d, want %d each", st.Ingested, st.ProfilesCreated, n)
	}
	e.Close()
	e = openDir(t, e.Dir())
	got, _ := e.Stats(context.Background())
	if got.Profiles != n || got.Events != n || got.Identifiers["email"] != n {
		t.Fatalf("stored: %+v", got)
	}
	if p := mustProfile(t, e, fmt.Sprintf("email:p%d@example.com", n-1)); p.EventCount != 1 {
		t.Fatalf("last person: %+v", p)
	}
}
