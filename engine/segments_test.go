package engine

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/loupe-cdp/loupe/rules"
	"github.com/loupe-cdp/loupe/store"
)

func TestSegmentVersionsAndHistory(t *testing.T) {
	ctx := context.Background()
	e := basicEngine(t)
	clock := snapNow
	e.now = func() time.Time { return clock }

	s1, err := e.SaveSegment(ctx, "Buyers", `has_event("Order Completed")`, SegmentOptions{Description: "anyone who ordered", Purpose: "marketing_email"})
	if err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(time.Hour)
	s2, err := e.SaveSegment(ctx, "Buyers", `event_count("Order Completed") >= 2`, SegmentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s1.Version != 1 || s2.Version != 2 || s2.Author != "tester" || !s2.Time.Equal(clock) {
		t.Fatalf("versions %+v %+v", s1, s2)
	}
	_, err = e.SaveSegment(ctx, "Bad", `evnt_count("x") > 1`, SegmentOptions{})
	var rerr *rules.Error
	if !errors.As(err, &rerr) || rerr.Suggestion != "event_count" {
		t.Fatalf("bad rule saved: %v", err)
	}
	if _, err := e.SaveSegment(ctx, "Loop", `in_segment("Loop")`, SegmentOptions{}); err == nil {
		t.Fatal("self-referencing segment saved")
	}
	if _, err := e.SaveSegment(ctx, "Ghost", `in_segment("Nope")`, SegmentOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("reference to unknown segment: %v", err)
	}
	if _, err := e.SaveSegment(ctx, "bad\x00name", `true`, SegmentOptions{}); !errors.Is(err, ErrSegmentName) {
		t.Fatalf("bad name: %v", err)
	}

	cur, err := e.Segment(ctx, "Buyers")
	if err != nil || cur.Version != 2 || cur.Rule != `event_count("Order Completed") >= 2` {
		t.Fatalf("latest %+v %v", cur, err)
	}
	m, err := e.SegmentMembers(ctx, "Buyers", 10)
	if err != nil || m.Count != 1 || len(m.Members) != 1 || m.Members[0].UserID != "user-ann" {
		t.Fatalf("members %+v %v", m, err)
	}
	// in_segment resolves saved segments in previews.
	res, err := e.Preview(ctx, `in_segment("Buyers") && traits.city == "Berlin"`, PreviewOptions{})
	if err != nil || res.Count != 1 {
		t.Fatalf("in_segment preview %+v %v", res, err)
	}
	if _, err := e.SaveSegment(ctx, "Berlin buyers", `in_segment("Buyers") && traits.city == "Berlin"`, SegmentOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.DeleteSegment(ctx, "Buyers"); err == nil || !strings.Contains(err.Error(), "Berlin buyers") {
		t.Fatalf("deleting a segment in use: %v", err)
	}
	if _, err := e.DeleteSegment(ctx, "Berlin buyers"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Segment(ctx, "Berlin buyers"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted segment: %v", err)
	}
	h, err := e.SegmentHistory(ctx, "Berlin buyers")
	if err != nil || len(h) != 2 || !h[1].Deleted || h[1].Version != 2 {
		t.Fatalf("history after delete %+v %v", h, err)
	}
	h, err = e.SegmentHistory(ctx, "Buyers")
	if err != nil || len(h) != 2 || h[0].Purpose != "marketing_email" || h[0].Description != "anyone who ordered" || !h[0].Time.Equal(snapNow) {
		t.Fatalf("history %+v %v", h, err)
	}
	list, err := e.Segments(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "Buyers" {
		t.Fatalf("list %+v %v", list, err)
	}
	if _, err := e.SegmentMembers(ctx, "Nope", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown segment: %v", err)
	}
}

func TestSegmentOverlap(t *testing.T) {
	ctx := context.Background()
	e := demoEngine(t, 1000)
	stored := storedProfiles(t, e)
	if _, err := e.SaveSegment(ctx, "pro", `traits.plan == "pro"`, SegmentOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.SaveSegment(ctx, "buyers", `has_event("Order Completed")`, SegmentOptions{}); err != nil {
		t.Fatal(err)
	}
	var both, onlyA, onlyB int
	for _, p := range stored {
		a, b := bfTrait(p, "plan") == "pro", bfCount(p, "Order Completed", 0) > 0
		switch {
		case a && b:
			both++
		case a:
			onlyA++
		case b:
			onlyB++
		}
	}
	ov, err := e.SegmentOverlap(ctx, "pro", "buyers")
	if err != nil {
		t.Fatal(err)
	}
	if ov.Both != both || ov.OnlyA != onlyA || ov.OnlyB != onlyB || both == 0 {
		t.Fatalf("overlap %+v, want both %d onlyA %d onlyB %d", ov, both, onlyA, onlyB)
	}
}

func TestSegmentExport(t *testing.T) {
	ctx := context.Background()
	e := basicEngine(t)
	var audit []string
	old := segmentAudit
	segmentAudit = func(ctx context.Context, e *Engine, action, detail string) error {
		audit = append(audit, action+" "+detail)
		return old(ctx, e, action, detail)
	}
	t.Cleanup(func() { segmentAudit = old })

	if _, err := e.SaveSegment(ctx, "Typo", `true`, SegmentOptions{Purpose: "email_marketing"}); !errors.Is(err, ErrSegmentPurpose) {
		t.Fatalf("unknown purpose accepted: %v", err)
	}
	if _, err := e.SaveSegment(ctx, "Identified", `len(identities.user_id) > 0`, SegmentOptions{Purpose: "marketing_email"}); err != nil {
		t.Fatal(err)
	}
	// Ann granted and later withdrew marketing_email; Dan's cookie banner
	// says Marketing: true; Ben grants it now; nobody else decided, and
	// GDPR's default is no consent.
	if _, err := e.SetConsent(ctx, "user_id:user-ben", ConsentInput{Purpose: "marketing_email", Status: "granted", Jurisdiction: "GDPR", Source: "form", Policy: "v3"}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	res, err := e.ExportSegment(ctx, "Identified", &buf, ExportOptions{Format: "csv", Columns: []string{"id", "email", "user_id", "trait.plan"}, Target: "out.csv"})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != "id,email,user_id,trait.plan" {
		t.Fatalf("header %v", recs[0])
	}
	if res.Exported != 2 || len(recs) != 3 || res.SuppressedNoConsent != res.Matched-2 || res.Matched < 4 || !res.ConsentChecked || res.Version != 1 {
		t.Fatalf("result %+v, %d rows", res, len(recs)-1)
	}
	byUser := map[string][]string{}
	for _, r := range recs[1:] {
		byUser[r[2]] = r
	}
	if r := byUser["user-ben"]; r == nil || r[3] != "pro" || r[1] != "ben@example.org" {
		t.Errorf("ben row %v", r)
	}
	if r := byUser["user-dan"]; r == nil {
		t.Errorf("Dan consented through the banner but is missing")
	}
	if r := byUser["user-ann"]; r != nil {
		t.Errorf("Ann withdrew marketing_email but was exported: %v", r)
	}
	if len(audit) != 1 || !strings.Contains(audit[0], `segment="Identified" version=1`) || !strings.Contains(audit[0], "exported=") || !strings.Contains(audit[0], `actor="tester"`) {
		t.Fatalf("audit %v", audit)
	}

	buf.Reset()
	res2, err := e.ExportSegment(ctx, "Identified", &buf, ExportOptions{Format: "ndjson", Columns: []string{"user_id", "event_count"}})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != res2.Exported {
		t.Fatalf("%d lines for %d exported", len(lines), res2.Exported)
	}
	var row map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &row); err != nil || len(row) != 2 || row["event_count"] == nil {
		t.Fatalf("ndjson row %s: %v", lines[0], err)
	}
	if _, err := e.ExportSegment(ctx, "Identified", &buf, ExportOptions{Format: "xml"}); !errors.Is(err, ErrExportFormat) {
		t.Fatalf("bad format: %v", err)
	}
	if _, err := e.ExportSegment(ctx, "Identified", &buf, ExportOptions{Format: "csv", Columns: []string{"plan"}}); !errors.Is(err, ErrExportFormat) {
		t.Fatalf("bad column: %v", err)
	}
	// A profile erased behind the snapshot's back never appears.
	ben, _ := e.Resolve(ctx, "user_id:user-ben")
	pid, _ := parsePID(ben)
	e.db.Update(func(tx *store.Txn) error { return tx.Delete(store.PIDKey(store.PrefixProfile, pid)) })
	buf.Reset()
	res3, err := e.ExportSegment(ctx, "Identified", &buf, ExportOptions{Format: "csv"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "user-ben") || res3.Suppressed != 1 || res3.Exported != res.Exported-1 {
		t.Fatalf("erased profile exported: %+v\n%s", res3, buf.String())
	}
}

// The erasure dry run and the access export name the saved segments the
// person is in.
func TestSubjectSegmentMemberships(t *testing.T) {
	e := openTest(t)
	ingestFixture(t, e, "segment-basic.ndjson")
	ctx := context.Background()
	if _, err := e.SaveSegment(ctx, "buyers", `event_count("Order Completed") >= 1`, SegmentOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.SaveSegment(ctx, "pro", `traits.plan == "pro"`, SegmentOptions{}); err != nil {
		t.Fatal(err)
	}
	plan, err := e.Erase(ctx, "user_id:user-ann", EraseOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(plan.Segments, []string{"buyers"}) {
		t.Fatalf("Ann leaves %v, want [buyers]", plan.Segments)
	}
	exp, err := e.ExportSubject(ctx, "user_id:user-ben")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(exp.Segments)
	if !slices.Equal(exp.Segments, []string{"buyers", "pro"}) {
		t.Fatalf("Ben's export lists %v, want [buyers pro]", exp.Segments)
	}
}
