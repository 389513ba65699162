package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loupe-cdp/loupe/engine/consent"
	"github.com/loupe-cdp/loupe/engine/segment"
	"github.com/loupe-cdp/loupe/store"
)

var ct0 = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

// msg builds one Segment message as an NDJSON line.
func msg(id, typ string, at time.Time, fields map[string]any) string {
	m := map[string]any{"messageId": id, "type": typ, "timestamp": at.Format(time.RFC3339Nano)}
	for k, v := range fields {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b) + "\n"
}

// whoField turns "user_id:u1" or "anonymous_id:a1" into the message
// field and value that carry it.
func whoField(who string) (string, string) {
	k, v, _ := strings.Cut(who, ":")
	return map[string]string{"user_id": "userId", "anonymous_id": "anonymousId"}[k], v
}

func consentUpdated(id, who string, at time.Time, purpose, status string, extra map[string]any) string {
	props := map[string]any{"purpose": purpose, "status": status, "legal_basis": "consent", "jurisdiction": "GDPR", "source": "form", "policy_version": "v3"}
	for k, v := range extra {
		props[k] = v
	}
	f := map[string]any{"event": "Consent Updated", "properties": props}
	k, v := whoField(who)
	f[k] = v
	return msg(id, "track", at, f)
}

func prefsEvent(id, who string, at time.Time, prefs map[string]any, gpc bool) string {
	ctx := map[string]any{"consent": map[string]any{"categoryPreferences": prefs}, "ip": "203.0.113.77"}
	if prefs == nil {
		ctx = map[string]any{}
	}
	if gpc {
		ctx["gpc"] = true
	}
	f := map[string]any{"name": "Home", "context": ctx}
	k, v := whoField(who)
	f[k] = v
	return msg(id, "page", at, f)
}

func history(t *testing.T, e *Engine, ref, purpose string) []ConsentRecord {
	t.Helper()
	h, err := e.ConsentHistory(context.Background(), ref, purpose)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func stateAt(t *testing.T, e *Engine, ref string, at time.Time) map[string]ConsentDecision {
	t.Helper()
	st, err := e.ConsentState(context.Background(), ref, at)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func verifyOK(t *testing.T, e *Engine) {
	t.Helper()
	res, err := e.VerifyConsent(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK {
		t.Fatalf("consent chains do not verify: %+v", res.Breaks)
	}
}

func TestCategoryPreferencesRecordOnlyChanges(t *testing.T) {
	e := openTest(t)
	var in strings.Builder
	on := map[string]any{"Analytics": true, "MARKETING": false, "Functional": true, "Unknown": true}
	for i := 0; i < 5; i++ {
		in.WriteString(prefsEvent(fmt.Sprintf("m%d", i), "user_id:u1", ct0.Add(time.Duration(i)*time.Minute), on, false))
	}
	// Marketing turned on, then off again: a grant then a withdrawal.
	in.WriteString(prefsEvent("m10", "user_id:u1", ct0.Add(time.Hour), map[string]any{"Marketing": true}, false))
	in.WriteString(prefsEvent("m11", "user_id:u1", ct0.Add(2*time.Hour), map[string]any{"Marketing": true, "Analytics": true}, false))
	in.WriteString(prefsEvent("m12", "user_id:u1", ct0.Add(3*time.Hour), map[string]any{"marketing": false}, false))
	// GPC twice: one opt-out of sale_or_sharing.
	in.WriteString(prefsEvent("m20", "user_id:u1", ct0.Add(4*time.Hour), nil, true))
	in.WriteString(prefsEvent("m21", "user_id:u1", ct0.Add(5*time.Hour), nil, true))
	in.WriteString(prefsEvent("m22", "user_id:u1", ct0.Add(6*time.Hour), nil, false))
	ingestString(t, e, in.String())

	h := history(t, e, "user_id:u1", "")
	var got []string
	for _, r := range h {
		got = append(got, r.Purpose+"="+r.Status+"/"+r.Source)
	}
	want := []string{
		"analytics=granted/banner", "personalization=granted/banner", "marketing_email=denied/banner",
		"marketing_email=granted/banner", "marketing_email=withdrawn/banner", "sale_or_sharing=denied/gpc",
	}
	if strings.Join(sortedCopy(got[:3]), ",") != strings.Join(sortedCopy(want[:3]), ",") || strings.Join(got[3:], ",") != strings.Join(want[3:], ",") {
		t.Fatalf("trail:\n got %v\nwant %v", got, want)
	}
	for _, r := range h {
		if (r.Source == "banner") != (r.IPHash != "") || strings.Contains(r.IPHash, "203.0.113") {
			t.Errorf("ip evidence %q", r.IPHash)
		}
		if r.MessageID == "" || r.Evidence == "" {
			t.Errorf("record without evidence: %+v", r)
		}
	}
	st := stateAt(t, e, "user_id:u1", ct0.Add(7*time.Hour))
	if st["marketing_email"].Status != "withdrawn" || st["analytics"].Status != "granted" || st["sale_or_sharing"].Status != "denied" || st["advertising"].Default != true {
		t.Errorf("state: %+v", st)
	}
	// A second ingest run (cold caches) still records only changes.
	ingestString(t, e, prefsEvent("m30", "user_id:u1", ct0.Add(8*time.Hour), on, false))
	// (on: Marketing false is already withdrawn, Analytics and Functional
	// are already granted.)
	if n := len(history(t, e, "user_id:u1", "")); n != 6 {
		t.Errorf("second run: %d records in all, want 6", n)
	}
	verifyOK(t, e)
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}

func TestConsentUpdatedEvent(t *testing.T) {
	e := openTest(t)
	ingestString(t, e, consentUpdated("c1", "user_id:u1", ct0, "marketing_sms", "granted", nil)+
		consentUpdated("c2", "user_id:u1", ct0.Add(time.Minute), "nonsense", "granted", nil)+
		consentUpdated("c3", "user_id:u1", ct0.Add(2*time.Minute), "marketing_sms", "maybe", nil))
	h := history(t, e, "user_id:u1", "")
	if len(h) != 1 {
		t.Fatalf("want only the valid record, got %+v", h)
	}
	r := h[0]
	if r.Purpose != "marketing_sms" || r.Status != "granted" || r.LegalBasis != "consent" || r.Jurisdiction != "GDPR" ||
		r.Source != "form" || r.PolicyVersion != "v3" || !r.DecidedAt.Equal(ct0) || !r.RecordedAt.Equal(fixedNow) || r.MessageID != "c1" || r.ID != "c1" {
		t.Errorf("record %+v", r)
	}
}

func TestConsentSetByHand(t *testing.T) {
	e := openTest(t)
	ingestString(t, e, prefsEvent("m1", "user_id:u1", ct0, nil, false))
	rec, err := e.SetConsent(context.Background(), "user_id:u1", ConsentInput{Purpose: "analytics", Status: "granted", LegalBasis: "legitimate_interest", Jurisdiction: "uk-gdpr", Source: "support", Policy: "2026-01", IP: "198.51.100.1", DecidedAt: ct0})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Jurisdiction != "UK-GDPR" || rec.IPHash == "" || rec.Profile != "p1" {
		t.Errorf("record %+v", rec)
	}
	for _, bad := range []ConsentInput{{Purpose: "nope", Status: "granted"}, {Purpose: "analytics", Status: "ok"}, {Purpose: "analytics", Status: "granted", LegalBasis: "whim"}} {
		if _, err := e.SetConsent(context.Background(), "user_id:u1", bad); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	if _, err := e.SetConsent(context.Background(), "user_id:nobody", ConsentInput{Purpose: "analytics", Status: "granted"}); err == nil {
		t.Error("unknown profile accepted")
	}
	verifyOK(t, e)
}

func TestPointInTimeAcrossMerge(t *testing.T) {
	e := openTest(t)
	// Profile 1 (user u1) withdraws at T+1h; profile 2 (anonymous a1)
	// grants at T+2h; u3 grants at T+1h and anonymous a3 withdraws at T+2h.
	ingestString(t, e,
		consentUpdated("e1", "user_id:u1", ct0, "marketing_email", "granted", nil)+
			consentUpdated("e2", "user_id:u1", ct0.Add(time.Hour), "marketing_email", "withdrawn", nil)+
			consentUpdated("e3", "anonymous_id:a1", ct0.Add(2*time.Hour), "marketing_email", "granted", nil)+
			consentUpdated("e4", "user_id:u3", ct0.Add(time.Hour), "marketing_email", "granted", nil)+
			consentUpdated("e5", "anonymous_id:a3", ct0.Add(2*time.Hour), "marketing_email", "withdrawn", nil))
	before := stateAt(t, e, "user_id:u1", ct0.Add(3*time.Hour))["marketing_email"]
	if before.Status != "withdrawn" {
		t.Fatalf("before merge: %+v", before)
	}
	// The merges.
	ingestString(t, e,
		msg("id1", "identify", ct0.Add(4*time.Hour), map[string]any{"userId": "u1", "anonymousId": "a1"})+
			msg("id3", "identify", ct0.Add(4*time.Hour), map[string]any{"userId": "u3", "anonymousId": "a3"}))
	p := mustProfile(t, e, "user_id:u1")
	if len(p.MergedIDs) != 1 {
		t.Fatalf("u1 and a1 did not merge: %+v", p)
	}
	cases := []struct {
		ref    string
		at     time.Time
		status string
		record string
	}{
		{"user_id:u1", ct0.Add(5 * time.Hour), "granted", "c3"}, // a later anonymous grant beats an earlier withdrawal
		{"anonymous_id:a1", ct0.Add(90 * time.Minute), "withdrawn", "c2"},
		{"user_id:u1", ct0.Add(30 * time.Minute), "granted", "c1"},
		{"user_id:u3", ct0.Add(5 * time.Hour), "withdrawn", "c5"}, // a later withdrawal beats an earlier grant
		{"user_id:u3", ct0.Add(90 * time.Minute), "granted", "c4"},
		{"user_id:u3", ct0.Add(-time.Hour), "denied", ""},
	}
	for _, tc := range cases {
		d := stateAt(t, e, tc.ref, tc.at)["marketing_email"]
		if d.Status != tc.status || d.SourceRecord != tc.record || d.Default != (tc.record == "") {
			t.Errorf("%s at %s: %+v, want %s from %q", tc.ref, tc.at.Format(time.Kitchen), d, tc.status, tc.record)
		}
	}
	if h := history(t, e, "user_id:u1", "marketing_email"); len(h) != 3 || h[2].ID != "c3" {
		t.Errorf("combined trail %+v", h)
	}
	// The rules snapshot reads profiles and consent records in one pass;
	// u1's grant is stored under a1's merged-away pid.
	pv, err := e.Preview(context.Background(), `consented("marketing_email")`, PreviewOptions{Sample: 5})
	if err != nil {
		t.Fatal(err)
	}
	if pv.Count != 1 || len(pv.Sample) != 1 || pv.Sample[0].ID != p.ID {
		t.Errorf("consented(marketing_email) after the merges: %d profiles %+v, want only %s", pv.Count, pv.Sample, p.ID)
	}
	// Change-only recording after the merge sees both trails: a1's grant
	// is in force, so a banner grant records nothing.
	ingestString(t, e, prefsEvent("m9", "user_id:u1", ct0.Add(6*time.Hour), map[string]any{"Marketing": true}, false))
	if h := history(t, e, "user_id:u1", "marketing_email"); len(h) != 3 {
		t.Errorf("a grant over a grant was recorded: %+v", h)
	}
	verifyOK(t, e)

	// Unmerge splits the trails back: a1's grant follows its event.
	res, err := e.Unmerge(context.Background(), "anonymous_id:a1")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Profiles) != 2 {
		t.Fatalf("unmerge: %+v", res)
	}
	if d := stateAt(t, e, "user_id:u1", ct0.Add(5*time.Hour))["marketing_email"]; d.Status != "withdrawn" {
		t.Errorf("after unmerge u1: %+v", d)
	}
	if d := stateAt(t, e, "anonymous_id:a1", ct0.Add(5*time.Hour))["marketing_email"]; d.Status != "granted" || d.SourceRecord != "c3" {
		t.Errorf("after unmerge a1: %+v", d)
	}
	verifyOK(t, e)
}

func TestJurisdictionDefaultsInEngine(t *testing.T) {
	e := openTest(t)
	ingestString(t, e, prefsEvent("m1", "user_id:eu", ct0, nil, false)+
		consentUpdated("m2", "user_id:ca", ct0, "analytics", "granted", map[string]any{"jurisdiction": "CPRA"}))
	eu := stateAt(t, e, "user_id:eu", ct0.Add(time.Hour))
	for p, d := range eu {
		if d.Status != "denied" || !d.Default || d.Jurisdiction != "GDPR" {
			t.Errorf("GDPR default %s: %+v", p, d)
		}
	}
	ca := stateAt(t, e, "user_id:ca", ct0.Add(time.Hour))
	if d := ca["sale_or_sharing"]; d.Status != "granted" || !d.Default || d.Jurisdiction != "CPRA" {
		t.Errorf("CPRA sale_or_sharing: %+v", d)
	}
	if d := ca["marketing_email"]; d.Status != "denied" || !d.Default {
		t.Errorf("CPRA marketing_email: %+v", d)
	}
	_, st, err := e.ConsentAt(context.Background(), "user_id:eu", ct0, "CCPA")
	if err != nil || st["sale_or_sharing"].Status != "granted" {
		t.Errorf("override: %+v %v", st["sale_or_sharing"], err)
	}
	ok, err := e.Consented(context.Background(), "user_id:ca", "analytics")
	if err != nil || !ok {
		t.Errorf("Consented analytics = %v %v", ok, err)
	}
}

// flip changes one byte of a stored value through Badger directly, with
// the engine closed.
func flip(t *testing.T, dir string, key []byte, at func(v []byte) int) {
	t.Helper()
	rewriteValue(t, dir, key, func(v []byte) []byte {
		v[at(v)] ^= 0x01
		return v
	})
}

// rewriteValue replaces a stored value with change(value) through Badger
// directly, with the engine closed.
func rewriteValue(t *testing.T, dir string, key []byte, change func(v []byte) []byte) {
	t.Helper()
	db, err := store.Open(store.BadgerDir(dir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *store.Txn) error {
		v, err := tx.Get(key)
		if err != nil {
			return err
		}
		return tx.Set(key, change(v))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// oneChainDir is a closed data dir where one ingest gave p1 two records,
// c1 and c2, in one block under c1, and its head in the head block c1.
func oneChainDir(t *testing.T) string {
	dir := t.TempDir()
	e := openDir(t, dir)
	ingestString(t, e,
		consentUpdated("e1", "user_id:u1", ct0, "analytics", "granted", nil)+
			consentUpdated("e2", "user_id:u1", ct0.Add(time.Hour), "marketing_email", "granted", nil))
	e.Close()
	return dir
}

// twoChains is four decisions of two people: p1 gets records c1, c3 and
// c4, p2 gets c2.
func twoChains() string {
	return consentUpdated("e1", "user_id:u1", ct0, "analytics", "granted", nil) +
		consentUpdated("e2", "user_id:u2", ct0, "analytics", "granted", nil) +
		consentUpdated("e3", "user_id:u1", ct0.Add(time.Hour), "marketing_email", "granted", nil) +
		consentUpdated("e4", "user_id:u1", ct0.Add(2*time.Hour), "marketing_email", "withdrawn", nil)
}

func TestConsentChainsNameFlippedRecord(t *testing.T) {
	dir := t.TempDir()
	e := openDir(t, dir)
	ingestString(t, e, twoChains())
	verifyOK(t, e)
	e.Close()
	// c3 is p1's second record: one ingest stored p1's c1, c3 and c4 as
	// one block under c1, and c3 is its first marketing_email record.
	// Flip the second byte of its status, "granted".
	var at int
	flip(t, dir, store.ConsentKey(1, 1), func(v []byte) int {
		c3 := strings.Index(string(v), "marketing_email")
		at = c3 + strings.Index(string(v[c3:]), "granted") + 1
		return at
	})
	e = openDir(t, dir)
	res, err := e.VerifyConsent(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || res.Records != 4 {
		t.Fatalf("verify after flip: %+v", res)
	}
	chains := map[string]bool{}
	for _, b := range res.Breaks {
		if b.Record != "c3" || b.Profile != "p1" || b.What == "" {
			t.Errorf("break names the wrong record: %+v", b)
		}
		chains[b.Chain] = true
	}
	if !chains["global"] || !chains["profile"] {
		t.Errorf("want breaks in both chains: %+v", res.Breaks)
	}
	// A flipped global chain entry is named too.
	e.Close()
	flip(t, dir, store.ConsentKey(1, 1), func([]byte) int { return at }) // undo
	// One ingest wrote the four entries as one block under c1; c2's
	// entry is the second, its chain hash at byte 40 of it.
	flip(t, dir, store.ConsentChainKey(1), func([]byte) int { return 1 + 64 + 40 })
	e = openDir(t, dir)
	res, _ = e.VerifyConsent(context.Background())
	if res.OK || len(res.Breaks) == 0 || res.Breaks[0].Record != "c2" || res.Breaks[0].Chain != "global" {
		t.Errorf("flipped chain entry: %+v", res)
	}
	for _, b := range res.Breaks {
		if b.Chain == "profile" {
			t.Errorf("c3 was restored, but a profile chain breaks: %+v", b)
		}
	}
}

func TestConsentRecordsMoveOnlyWithTheirEvent(t *testing.T) {
	// moveConsent on an event without records is a no-op, and on one with
	// records moves them under the new pid keeping their chain.
	e := openTest(t)
	ingestString(t, e, consentUpdated("e1", "user_id:u1", ct0, "analytics", "granted", nil))
	err := e.db.Update(func(tx *store.Txn) error {
		return e.moveConsent(tx, 1, map[string]uint64{"nothing": 7})
	})
	if ok, _ := hasKey(e, store.ConsentKey(1, 1)); err != nil || !ok {
		t.Fatalf("moving another event's records moved e1's: %v", err)
	}
	err = e.db.Update(func(tx *store.Txn) error {
		return e.moveConsent(tx, 1, map[string]uint64{"e1": 7, "e0": 8})
	})
	if err != nil {
		t.Fatal(err)
	}
	e.db.View(func(tx *store.Txn) error {
		if ok, _ := tx.Has(store.ConsentKey(7, 1)); !ok {
			t.Error("record not moved")
		}
		if ok, _ := tx.Has(store.ConsentKey(1, 1)); ok {
			t.Error("record left behind")
		}
		return nil
	})
	verifyOK(t, e)
}

func hasKey(e *Engine, k []byte) (ok bool, err error) {
	err = e.db.View(func(tx *store.Txn) error {
		ok, err = tx.Has(k)
		return err
	})
	return ok, err
}

func TestReceiptFromEngine(t *testing.T) {
	e := openTest(t)
	ingestString(t, e, consentUpdated("e1", "user_id:u1", ct0, "analytics", "granted", nil))
	r, err := e.ConsentReceiptFor(context.Background(), "user_id:u1", "analytics")
	if err != nil {
		t.Fatal(err)
	}
	if r.PIIPrincipalID != "p1" || len(r.Evidence.Records) != 1 || r.Services[0].Purposes[0].Status != consent.Granted {
		t.Errorf("receipt %+v", r)
	}
	_ = filepath.Join
}

// Two categories that map to one purpose give one signal, and a refusal in
// either wins (the default config maps both Functional and Personalization
// to personalization).
func TestCategoryPreferencesOneSignalPerPurpose(t *testing.T) {
	e := openTest(t)
	c, err := e.compl()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		prefs    map[string]any
		granted  bool
		evidence string
	}{
		{map[string]any{"Functional": true, "Personalization": false, "Analytics": true}, false, "categoryPreferences.Personalization"},
		{map[string]any{"Functional": false, "Personalization": true}, false, "categoryPreferences.Functional"},
		{map[string]any{"Functional": true, "Personalization": true}, true, "categoryPreferences.Functional"},
	} {
		ev, err := segment.Parse([]byte(prefsEvent("m1", "user_id:u1", ct0, tc.prefs, true)), ct0)
		if err != nil {
			t.Fatal(err)
		}
		var got []consent.Signal
		for _, s := range eventSignals(&c.cfg, &ev) {
			if s.Purpose == "personalization" {
				got = append(got, s)
			}
		}
		if len(got) != 1 || got[0].Granted != tc.granted || got[0].Evidence != tc.evidence {
			t.Errorf("prefs %v: personalization signals %+v, want one, granted %v, evidence %s", tc.prefs, got, tc.granted, tc.evidence)
		}
		if sigs := eventSignals(&c.cfg, &ev); sigs[len(sigs)-1].Purpose != consent.SaleOrSharing {
			t.Errorf("prefs %v: GPC signal missing or not last: %+v", tc.prefs, sigs)
		}
	}
}

// consentValues lists the consent keys stored under pid with, for each,
// the sequence numbers of the records its value holds.
func consentValues(t *testing.T, e *Engine, pid uint64) map[uint64][]uint64 {
	t.Helper()
	out := map[uint64][]uint64{}
	err := e.db.View(func(tx *store.Txn) error {
		return tx.Iterate(store.ConsentPrefix(pid), store.IterOptions{}, func(k, v []byte) error {
			key := store.Uint64(k, 9)
			out[key] = []uint64{}
			return consent.EachStored(key, v, func(seq uint64, b []byte) error {
				s, err := consent.Decode(b)
				if err != nil || s.Seq() != seq {
					return fmt.Errorf("c%d in the value of c%d: %v (record says c%d)", seq, key, err, s.Seq())
				}
				out[key] = append(out[key], seq)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestIngestStoresAProfilesRecordsAsOneBlock(t *testing.T) {
	dir := t.TempDir()
	e := openDir(t, dir)
	ingestString(t, e, twoChains())
	if got := consentValues(t, e, 1); !reflect.DeepEqual(got, map[uint64][]uint64{1: {1, 3, 4}}) {
		t.Errorf("p1's consent values: %v, want one block under c1 holding c1, c3, c4", got)
	}
	// The heads of both chains are in the unit's head block, under c1
	// like its global chain block; no head key of their own.
	if ok, _ := hasKey(e, store.ConsentProfileHeadKey(1)); ok {
		t.Error("ingest wrote p1's head under its own key")
	}
	e.db.View(func(tx *store.Txn) error {
		b, err := tx.Get(store.ConsentHeadBlockKey(1))
		heads := map[uint64]uint64{}
		if err == nil {
			err = consent.EachHead(b, func(pid uint64, h consent.Head) { heads[pid] = h.Seq })
		}
		if err != nil || !reflect.DeepEqual(heads, map[uint64]uint64{1: 4, 2: 2}) {
			t.Errorf("head block: %v %v, want p1 at c4 and p2 at c2", heads, err)
		}
		return nil
	})
	// A record set by hand is stored alone, beside the block; both are
	// read as one trail.
	if _, err := e.SetConsent(context.Background(), "user_id:u1", ConsentInput{Purpose: "analytics", Status: "withdrawn", DecidedAt: ct0.Add(150 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if got := consentValues(t, e, 1); !reflect.DeepEqual(got, map[uint64][]uint64{1: {1, 3, 4}, 5: {5}}) {
		t.Errorf("after consent set: %v", got)
	}
	// The chain goes on from the record set by hand, in this run and,
	// read back from the store, after a reopen.
	ingestString(t, e, consentUpdated("e5", "user_id:u1", ct0.Add(4*time.Hour), "marketing_sms", "granted", nil))
	verifyOK(t, e)
	e.Close()
	e = openDir(t, dir)
	ingestString(t, e, consentUpdated("e6", "user_id:u1", ct0.Add(5*time.Hour), "marketing_sms", "denied", nil))
	if h := history(t, e, "user_id:u1", ""); len(h) != 6 {
		t.Errorf("trail: %d records, want 6: %+v", len(h), h)
	}
	st := stateAt(t, e, "user_id:u1", ct0.Add(3*time.Hour))
	if st["analytics"].Status != consent.Withdrawn || st["marketing_email"].Status != consent.Withdrawn {
		t.Errorf("state: %+v", st)
	}
	verifyOK(t, e)
}

func TestUnmergeSplitsARecordBlock(t *testing.T) {
	// One ingest stores p1's records from e1 and e2 as one block; moving
	// e1's events moves its record out of the block, and e2's stays.
	e := openTest(t)
	ingestString(t, e,
		consentUpdated("e1", "user_id:u1", ct0, "analytics", "granted", nil)+
			consentUpdated("e2", "user_id:u1", ct0.Add(time.Hour), "marketing_email", "granted", nil))
	if got := consentValues(t, e, 1); !reflect.DeepEqual(got, map[uint64][]uint64{1: {1, 2}}) {
		t.Fatalf("before: %v", got)
	}
	if err := e.db.Update(func(tx *store.Txn) error {
		return e.moveConsent(tx, 1, map[string]uint64{"e1": 7})
	}); err != nil {
		t.Fatal(err)
	}
	if got := consentValues(t, e, 1); !reflect.DeepEqual(got, map[uint64][]uint64{1: {2}}) {
		t.Errorf("left under p1: %v, want c2 alone in the block under c1", got)
	}
	if got := consentValues(t, e, 7); !reflect.DeepEqual(got, map[uint64][]uint64{1: {1}}) {
		t.Errorf("moved to p7: %v, want c1", got)
	}
	verifyOK(t, e)
	// Moving the block's last record deletes its key.
	if err := e.db.Update(func(tx *store.Txn) error {
		return e.moveConsent(tx, 1, map[string]uint64{"e2": 7})
	}); err != nil {
		t.Fatal(err)
	}
	if got := consentValues(t, e, 1); len(got) != 0 {
		t.Errorf("left under p1: %v, want nothing", got)
	}
	verifyOK(t, e)
	// p1's chain went on at c2, now stored under p7: its next record
	// follows c2 (moveConsent stored the head under p1's key).
	ingestString(t, e, consentUpdated("e3", "user_id:u1", ct0.Add(2*time.Hour), "advertising", "granted", nil))
	verifyOK(t, e)
}

func TestVerifyChecksHeadBlocks(t *testing.T) {
	dir := oneChainDir(t)
	// One head, p1's: pid (8 bytes), seq (8), hash (32). A byte of the
	// hash flipped is a head that does not match the chain.
	flip(t, dir, store.ConsentHeadBlockKey(1), func([]byte) int { return 8 + 8 + 5 })
	e := openDir(t, dir)
	res, err := e.VerifyConsent(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || len(res.Breaks) != 1 || res.Breaks[0].Profile != "p1" || !strings.Contains(res.Breaks[0].What, "head says") {
		t.Errorf("flipped head: %+v", res)
	}
	// A head block cut short is named.
	e.Close()
	rewriteValue(t, dir, store.ConsentHeadBlockKey(1), func(v []byte) []byte { return v[:len(v)-1] })
	e = openDir(t, dir)
	res, _ = e.VerifyConsent(context.Background())
	if res.OK || !hasBreak(res, "", "c1", "head block") {
		t.Errorf("head block cut short: %+v", res)
	}
}

// hasBreak reports whether res has a break of profile and record (either
// "" for any) whose text holds what.
func hasBreak(res ConsentVerifyResult, profile, record, what string) bool {
	return slices.ContainsFunc(res.Breaks, func(b ConsentBreak) bool {
		return (profile == "" || b.Profile == profile) && (record == "" || b.Record == record) && strings.Contains(b.What, what)
	})
}

func TestVerifyNamesAHeadKeyThatDoesNotParse(t *testing.T) {
	dir := oneChainDir(t)
	db, err := store.Open(store.BadgerDir(dir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *store.Txn) error { return tx.Set(store.ConsentProfileHeadKey(1), []byte{1, 2, 3}) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	e := openDir(t, dir)
	res, err := e.VerifyConsent(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || !hasBreak(res, "p1", "", "chain head is 3 bytes") {
		t.Errorf("a 3-byte head key: %+v", res)
	}
}

func TestVerifyReportsADamagedBlock(t *testing.T) {
	dir := oneChainDir(t)
	// The first record's length, right after the version byte and its
	// sequence number, made to run past the block.
	flip(t, dir, store.ConsentKey(1, 1), func([]byte) int { return 3 })
	e := openDir(t, dir)
	res, err := e.VerifyConsent(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || len(res.Breaks) == 0 {
		t.Fatalf("verify of a damaged block: %+v", res)
	}
	if !hasBreak(res, "", "c1", "do not decode") {
		t.Errorf("no break names the damaged block: %+v", res.Breaks)
	}
	// Readers skip what they cannot read instead of failing.
	if _, err := e.ConsentHistory(context.Background(), "user_id:u1", ""); err != nil {
		t.Errorf("history over a damaged block: %v", err)
	}
}

func TestSignalCacheMatchesEventSignals(t *testing.T) {
	e := openTest(t)
	c, err := e.compl()
	if err != nil {
		t.Fatal(err)
	}
	banner := func(prefs map[string]any, jur, pol string, gpc bool) string {
		cm := map[string]any{"categoryPreferences": prefs}
		if jur != "" {
			cm["jurisdiction"] = jur
		}
		if pol != "" {
			cm["policyVersion"] = pol
		}
		ctx := map[string]any{"consent": cm, "ip": "203.0.113.77"}
		if prefs == nil {
			ctx["consent"] = map[string]any{"jurisdiction": jur}
		}
		if gpc {
			ctx["gpc"] = true
		}
		return msg("m", "page", ct0, map[string]any{"userId": "u1", "name": "Home", "context": ctx})
	}
	msgs := []string{
		banner(map[string]any{"Marketing": true, "Analytics": false}, "GDPR", "v1", false),
		"", // msgs[0] with its members in another order, below
		banner(map[string]any{"Marketing": false, "Analytics": false}, "GDPR", "v1", false),
		banner(map[string]any{"Marketing": true, "Analytics": false}, "GDPR", "v1", true),
		banner(map[string]any{"Marketing": true, "Analytics": false}, "CCPA", "v1", false),
		banner(map[string]any{"Marketing": true, "Analytics": false}, "", "GDPRv1", false), // the strings run together differently
		banner(map[string]any{"Marketing": true, "Analytics": "yes", "Functional": nil}, "GDPR", "v1", false),
		banner(map[string]any{}, "GDPR", "v2", true),
		banner(nil, "GDPR", "", true),
	}
	// json.Marshal sorts members; a banner can send them in any order.
	msgs[1] = strings.Replace(msgs[0], `"Analytics":false,"Marketing":true`, `"Marketing":true,"Analytics":false`, 1)
	if msgs[1] == msgs[0] {
		t.Fatal("test is vacuous: the members were not reordered")
	}
	var sc signalCache
	for round := range 2 { // misses, then hits
		for i, m := range msgs {
			ev, err := segment.Parse([]byte(m), ct0)
			if err != nil {
				t.Fatal(err)
			}
			got, want := sc.signals(&c.cfg, &ev), eventSignals(&c.cfg, &ev)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round %d, message %d: cached %+v\nwant %+v", round, i, got, want)
			}
		}
	}
	// The cache keys on context.consent as sent: the reordered members are
	// a key of their own, with the same signals (checked above).
	if n := len(sc.sigs); n != len(msgs) {
		t.Errorf("%d combinations cached, want %d", n, len(msgs))
	}
}
