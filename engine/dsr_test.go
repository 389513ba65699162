package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loupe-cdp/loupe/engine/consent"
	"github.com/loupe-cdp/loupe/store"
)

// subject is the person whose data is erased in these tests.
const (
	subjEmail = "Ann.Erasure@Example.com"
	subjUser  = "user-ann-7731"
	subjPhone = "+14155550199"
	subjAnon  = "anon-ann-55aa"
)

func subjectEvents(prefix string, at time.Time) string {
	var b strings.Builder
	b.WriteString(msg(prefix+"-1", "identify", at, map[string]any{"userId": subjUser, "anonymousId": subjAnon,
		"traits": map[string]any{"email": subjEmail, "phone": subjPhone, "name": "Ann Erasure", "plan": "pro"}}))
	b.WriteString(prefsEvent(prefix+"-2", "user_id:"+subjUser, at.Add(time.Minute), map[string]any{"Marketing": true, "Analytics": true}, true))
	b.WriteString(msg(prefix+"-3", "track", at.Add(2*time.Minute), map[string]any{"userId": subjUser, "event": "Order Completed",
		"properties": map[string]any{"revenue": 42.5, "contact": subjEmail}}))
	b.WriteString(consentUpdated(prefix+"-4", "anonymous_id:"+subjAnon, at.Add(3*time.Minute), "marketing_sms", "granted", nil))
	for i := 0; i < 30; i++ {
		b.WriteString(msg(fmt.Sprintf("%s-p%d", prefix, i), "page", at.Add(time.Duration(4+i)*time.Minute), map[string]any{"anonymousId": subjAnon, "name": "Pricing",
			"context": map[string]any{"traits": map[string]any{"email": subjEmail}}}))
	}
	return b.String()
}

func otherEvents(n int, at time.Time) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(msg(fmt.Sprintf("o-%d", i), "identify", at.Add(time.Duration(i)*time.Second), map[string]any{"userId": fmt.Sprintf("other-%d", i%500),
			"traits": map[string]any{"email": fmt.Sprintf("other%d@example.org", i%500), "plan": "free"}}))
		b.WriteString(prefsEvent(fmt.Sprintf("oc-%d", i), fmt.Sprintf("user_id:other-%d", i%500), at.Add(time.Duration(i)*time.Second), map[string]any{"Analytics": i%2 == 0}, false))
	}
	return b.String()
}

// grepDir reads every file under dir once and returns, per needle, the
// files holding it (exactly, or lower-cased).
func grepDir(t *testing.T, dir string, needles ...string) map[string][]string {
	t.Helper()
	var pats [][]byte
	owner := map[int]string{}
	for _, n := range needles {
		for _, v := range []string{n, strings.ToLower(n)} {
			owner[len(pats)] = n
			pats = append(pats, []byte(v))
		}
	}
	longest := 0
	for _, p := range pats {
		longest = max(longest, len(p))
	}
	hits := map[string][]string{}
	buf := make([]byte, 4<<20)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		found := map[string]bool{}
		carry := 0
		for {
			n, rerr := io.ReadFull(f, buf[carry:])
			win := buf[:carry+n]
			for i, pat := range pats {
				if !found[owner[i]] && bytes.Contains(win, pat) {
					found[owner[i]] = true
					hits[owner[i]] = append(hits[owner[i]], p)
				}
			}
			if rerr != nil {
				break
			}
			carry = min(longest, len(win))
			copy(buf, win[len(win)-carry:])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func TestErasureLeavesNothingOnDisk(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	e := openDir(t, dir)
	ingestString(t, e, otherEvents(3000, ct0))
	ingestString(t, e, subjectEvents("s", ct0.Add(time.Hour)))
	// Rejected lines holding the subject's identifiers, and one that does not.
	ingestString(t, e, `{"type":"track","event":"Old","userId":"`+subjUser+`","timestamp":"1800-01-01T00:00:00Z"}`+"\n"+
		`{"type":"identify","userId":"x1","traits":{"email":"`+subjEmail+`"},"timestamp":"1800-01-01T00:00:00Z"}`+"\n"+
		`{"type":"track","event":"Old","userId":"someone-else","timestamp":"1800-01-01T00:00:00Z"}`+"\n")
	stBefore, _ := e.Stats(ctx)
	p := mustProfile(t, e, "email:"+strings.ToLower(subjEmail))
	if len(p.Identities) < 4 {
		t.Fatalf("subject profile: %+v", p.Identities)
	}
	if _, err := e.SetConsent(ctx, "user_id:"+subjUser, ConsentInput{Purpose: "advertising", Status: "denied", IP: "192.0.2.10", Evidence: "phone call"}); err != nil {
		t.Fatal(err)
	}
	before := grepDir(t, dir, subjEmail, subjUser, subjPhone)
	for _, needle := range []string{subjEmail, subjUser, subjPhone} {
		if len(before[needle]) == 0 {
			t.Fatalf("test is vacuous: %s not on disk before erasure", needle)
		}
	}
	// Large values (events, profiles) live in Badger's value log. Since
	// schema 6 no key holds an identifier in plain text (the identity
	// index keeps salted digests), so the tables need not hold the subject.
	inVlog := false
	for _, f := range before[subjUser] {
		inVlog = inVlog || strings.HasSuffix(f, ".vlog")
	}
	if !inVlog {
		t.Fatalf("test is vacuous: subject's user id found in %v, want a .vlog", before[subjUser])
	}
	req, err := e.OpenDSR(ctx, DSRErasure, "user_id:"+subjUser, DSROptions{Jurisdiction: "GDPR", Channel: "email"})
	if err != nil {
		t.Fatal(err)
	}

	dry, err := e.Erase(ctx, "user_id:"+subjUser, EraseOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry.Counts["events"] != 34 || dry.Counts["identities"] != 4 || dry.Counts["consent_records"] < 4 || dry.Counts["rejected_lines"] != 2 || !dry.DryRun {
		t.Errorf("dry run: %+v", dry)
	}
	if _, err := e.Profile(ctx, "user_id:"+subjUser); err != nil {
		t.Fatal("dry run removed the profile")
	}

	plan, err := e.Erase(ctx, "user_id:"+subjUser, EraseOptions{Request: req.ID})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Counts["events"] != 34 || plan.Suppressions != 4 {
		t.Errorf("erase: %+v", plan)
	}
	if _, err := e.Profile(ctx, "user_id:"+subjUser); err == nil {
		t.Error("profile still resolves")
	}
	verifyOK(t, e) // stubs keep both chains whole
	// Every consent record stored under the subject's profile is a stub
	// now, those an ingest stored in blocks included.
	pid, _ := strconv.ParseUint(strings.TrimPrefix(plan.Profile, "p"), 10, 64)
	stubs := 0
	e.db.View(func(tx *store.Txn) error {
		return tx.Iterate(store.ConsentPrefix(pid), store.IterOptions{}, func(k, v []byte) error {
			return consent.EachStored(store.Uint64(k, 9), v, func(seq uint64, b []byte) error {
				if s, err := consent.Decode(b); err != nil || s.Stub == nil {
					t.Errorf("c%d under the erased %s: not a stub (%v)", seq, plan.Profile, err)
				}
				stubs++
				return nil
			})
		})
	})
	if stubs != int(dry.Counts["consent_records"]) {
		t.Errorf("%d stubs under %s, want the %d records the plan counted", stubs, plan.Profile, dry.Counts["consent_records"])
	}
	st, _ := e.Stats(ctx)
	if stBefore.Profiles-st.Profiles != 1 || stBefore.Events-st.Events != 34 || stBefore.Identifiers["email"]-st.Identifiers["email"] != 1 {
		t.Errorf("counters: before %+v after %+v", stBefore, st)
	}
	reqs, _ := e.ListDSR(ctx, false)
	if len(reqs) != 1 || reqs[0].Status != DSRClosed || !reqs[0].SubjectErased || reqs[0].Profile != plan.Profile {
		t.Errorf("request log: %+v", reqs)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := GC(ctx, dir, Options{Now: func() time.Time { return fixedNow }, Actor: "tester"}); err != nil {
		t.Fatal(err)
	}
	after := grepDir(t, dir, subjEmail, subjUser, subjPhone, subjAnon, "192.0.2.10")
	for needle, files := range after {
		t.Errorf("%s still on disk after erase + gc in %v", needle, files)
	}
	// The rest is intact and the rejects file kept the unrelated line.
	e = openDir(t, dir)
	if _, err := e.Profile(ctx, "user_id:other-7"); err != nil {
		t.Error(err)
	}
	rj, _ := os.ReadFile(filepath.Join(dir, RejectsFile))
	if !bytes.Contains(rj, []byte("someone-else")) {
		t.Errorf("rejects file lost unrelated lines: %q", rj)
	}
	verifyOK(t, e)
	if res, _ := e.VerifyAudit(ctx); !res.OK {
		t.Errorf("audit after gc: %+v", res)
	}

	// Suppression on re-ingest: the subject's events are dropped and counted.
	st2 := ingestString(t, e, subjectEvents("again", ct0.Add(48*time.Hour))+otherEvents(2, ct0.Add(49*time.Hour)))
	if st2.Suppressed != 34 || st2.Ingested != 0 && st2.Ingested != 4 {
		t.Errorf("re-ingest: %+v", st2)
	}
	if _, err := e.Profile(ctx, "email:"+strings.ToLower(subjEmail)); err == nil {
		t.Error("suppressed subject came back")
	}
	n, err := e.Unsuppress(ctx, plan.Profile)
	if err != nil || n != 4 {
		t.Fatalf("unsuppress: %d %v", n, err)
	}
	st3 := ingestString(t, e, subjectEvents("third", ct0.Add(72*time.Hour)))
	if st3.Suppressed != 0 || st3.Ingested != 34 {
		t.Errorf("after unsuppress: %+v", st3)
	}
}

func TestSuppressionSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	e := openDir(t, dir)
	ingestString(t, e, subjectEvents("s", ct0))
	if _, err := e.Erase(ctx, "phone:"+subjPhone, EraseOptions{}); err != nil {
		t.Fatal(err)
	}
	e.Close()
	e = openDir(t, dir)
	st := ingestString(t, e, msg("late", "track", ct0.Add(time.Hour), map[string]any{"anonymousId": subjAnon, "event": "X"}))
	if st.Suppressed != 1 {
		t.Errorf("suppression not loaded at open: %+v", st)
	}
	if _, err := e.Unsuppress(ctx, "anonymous_id:"+subjAnon); err != nil {
		t.Fatal(err)
	}
	st = ingestString(t, e, msg("later", "track", ct0.Add(time.Hour), map[string]any{"anonymousId": subjAnon, "event": "X"}))
	if st.Suppressed != 0 || st.Ingested != 1 {
		t.Errorf("after unsuppress by identifier: %+v", st)
	}
}

func TestExportContents(t *testing.T) {
	ctx := context.Background()
	e := openTest(t)
	ingestString(t, e, subjectEvents("s", ct0))
	if err := e.SetTrait(ctx, "user_id:"+subjUser, "name", "Ann E. Rasure", "subject asked to correct the spelling"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.OpenDSR(ctx, DSRAccess, "user_id:"+subjUser, DSROptions{Jurisdiction: "CCPA", Channel: "web_form"}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ann.json")
	if _, err := e.WriteSubjectExport(ctx, "email:"+strings.ToLower(subjEmail), path); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("export mode %v", fi.Mode())
	}
	b, _ := os.ReadFile(path)
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"schema", "profile_id", "identities", "traits", "events", "consent_trail", "consent_now", "segments", "merges", "requests"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("export lacks %s", k)
		}
	}
	var ex DSRExport
	json.Unmarshal(b, &ex)
	if ex.Schema != DSRExportSchema || len(ex.Events) != 34 || len(ex.Identities) != 4 || len(ex.Consent) < 4 || len(ex.Requests) != 1 {
		t.Errorf("export: events %d identities %d consent %d requests %d", len(ex.Events), len(ex.Identities), len(ex.Consent), len(ex.Requests))
	}
	name := ex.Traits["name"]
	if name.Value != "Ann E. Rasure" || name.Source != "rectification" || len(name.History) != 1 || name.History[0].Value != "Ann Erasure" || name.History[0].Source != "event" {
		t.Errorf("trait with provenance and history: %+v", name)
	}
	if len(ex.Merges.Links) == 0 || len(ex.MergedIDs) != 0 && len(ex.Merges.MergedIDs) != len(ex.MergedIDs) {
		t.Errorf("merges: %+v", ex.Merges)
	}
	if !bytes.Contains(b, []byte(`"Order Completed"`)) {
		t.Error("raw events missing")
	}
}

func TestRectificationHistory(t *testing.T) {
	ctx := context.Background()
	e := openTest(t)
	ingestString(t, e, msg("i1", "identify", ct0, map[string]any{"userId": "u1", "traits": map[string]any{"plan": "free"}}))
	if err := e.SetTrait(ctx, "user_id:u1", "plan", "pro", ""); err == nil {
		t.Error("rectification without a reason accepted")
	}
	if err := e.SetTrait(ctx, "user_id:u1", "plan", "pro", "billing ticket 123"); err != nil {
		t.Fatal(err)
	}
	if err := e.SetTrait(ctx, "user_id:u1", "plan", "team", "billing ticket 124"); err != nil {
		t.Fatal(err)
	}
	tr := mustProfile(t, e, "user_id:u1").Traits["plan"]
	if tr.Value != "team" || tr.Source != "rectification" || tr.Reason != "billing ticket 124" || len(tr.History) != 2 ||
		tr.History[0].Value != "pro" || tr.History[0].Reason != "billing ticket 123" || tr.History[1].Value != "free" || tr.History[1].Source != "event" {
		t.Errorf("history: %+v", tr)
	}
	// Ingest after a rectification keeps it (older events go to history).
	ingestString(t, e, msg("i2", "identify", ct0.Add(time.Hour), map[string]any{"userId": "u1", "traits": map[string]any{"plan": "free"}}))
	if tr := mustProfile(t, e, "user_id:u1").Traits["plan"]; tr.Value != "team" {
		t.Errorf("an older event replaced a rectification: %+v", tr)
	}
}

func TestDSRDueDatesAndOverdue(t *testing.T) {
	ctx := context.Background()
	now := fixedNow
	dir := t.TempDir()
	e, err := Open(dir, Options{Now: func() time.Time { return now }, Actor: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ingestString(t, e, msg("i1", "identify", ct0, map[string]any{"userId": "u1"}))
	g, err := e.OpenDSR(ctx, DSRAccess, "user_id:u1", DSROptions{Jurisdiction: "gdpr", Channel: "email"})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := e.OpenDSR(ctx, DSRErasure, "p1", DSROptions{Jurisdiction: "CPRA"})
	if g.DueAt.Sub(g.OpenedAt) != 30*24*time.Hour || c.DueAt.Sub(c.OpenedAt) != 45*24*time.Hour || g.Jurisdiction != "GDPR" {
		t.Errorf("due dates: %+v %+v", g, c)
	}
	if _, err := e.OpenDSR(ctx, "delete", "p1", DSROptions{}); err == nil {
		t.Error("unknown type accepted")
	}
	now = fixedNow.AddDate(0, 0, 31)
	od, _ := e.ListDSR(ctx, true)
	if len(od) != 1 || od[0].ID != g.ID || !od[0].Overdue {
		t.Errorf("overdue: %+v", od)
	}
	if _, err := e.CloseDSR(ctx, g.ID, DSRDenied, ""); err == nil {
		t.Error("denial without reason accepted")
	}
	cl, err := e.CloseDSR(ctx, g.ID, DSRDenied, "identity could not be verified")
	if err != nil || cl.Outcome != DSRDenied || cl.ClosedAt == nil || cl.Reason == "" {
		t.Fatalf("close: %+v %v", cl, err)
	}
	if od, _ := e.ListDSR(ctx, true); len(od) != 0 {
		t.Errorf("closed request still overdue: %+v", od)
	}
	if _, err := e.CloseDSR(ctx, g.ID, DSRFulfilled, ""); err == nil {
		t.Error("closed twice")
	}
}

func TestAuditEntriesForEachAction(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e := openDir(t, dir)
	ingestString(t, e, subjectEvents("s", ct0)+msg("x1", "identify", ct0, map[string]any{"userId": "u9", "anonymousId": "a9"}))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.SetConsent(ctx, "user_id:u9", ConsentInput{Purpose: "analytics", Status: "granted"})
	must(err)
	d, err := e.OpenDSR(ctx, DSRAccess, "user_id:u9", DSROptions{})
	must(err)
	_, err = e.WriteSubjectExport(ctx, "user_id:u9", filepath.Join(t.TempDir(), "x.json"))
	must(err)
	_, err = e.CloseDSR(ctx, d.ID, "", "")
	must(err)
	must(e.SetTrait(ctx, "user_id:u9", "plan", "pro", "ticket"))
	_, err = e.Unmerge(ctx, "anonymous_id:a9")
	must(err)
	must(e.Audit(ctx, AuditReveal, "p2", "revealed email in the workbench"))
	must(e.Audit(ctx, "segment.export", "", "segment vip: 3 profiles"))
	_, err = e.Erase(ctx, "user_id:"+subjUser, EraseOptions{})
	must(err)
	_, err = e.Unsuppress(ctx, "email:"+strings.ToLower(subjEmail))
	must(err)
	if err := e.Audit(ctx, AuditExport, "email:ann@example.com", ""); err == nil {
		t.Error("an identifier was accepted as the audit profile")
	}
	e.Close()
	if _, err := GC(ctx, dir, Options{Now: func() time.Time { return fixedNow }, Actor: "tester"}); err != nil {
		t.Fatal(err)
	}
	e = openDir(t, dir)
	log, err := e.AuditLog(ctx)
	must(err)
	var got []string
	for _, en := range log {
		got = append(got, en.Action)
		if en.Actor != "tester" || en.Time.IsZero() {
			t.Errorf("entry %+v", en)
		}
		if strings.Contains(en.Detail, "@") || strings.Contains(en.Profile, ":") {
			t.Errorf("personal data in the audit log: %+v", en)
		}
	}
	want := "consent_set dsr_open export dsr_close rectification unmerge reveal segment_export erasure unsuppress gc"
	if strings.Join(got, " ") != want {
		t.Errorf("actions:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	res, err := e.VerifyAudit(ctx)
	if err != nil || !res.OK || res.Entries != 11 {
		t.Fatalf("verify: %+v %v", res, err)
	}
	// One byte of entry 5 flipped through Badger: verify names entry 5.
	e.Close()
	flip(t, dir, store.AuditKey(5), func(v []byte) int { return strings.Index(string(v), `"tester"`) + 2 })
	e = openDir(t, dir)
	res, _ = e.VerifyAudit(ctx)
	if res.OK || len(res.Breaks) != 1 || res.Breaks[0].Entry != 5 {
		t.Errorf("flipped entry: %+v", res)
	}
}
