package engine

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/loupe-cdp/loupe/rules"
)

// Brute-force versions of the rule functions over stored records.
func bfCount(p *profileRec, name string, within time.Duration) int64 {
	er := p.Events[name]
	if er == nil {
		return 0
	}
	if within == 0 {
		return er.N
	}
	cutoff := snapNow.Add(-within)
	if er.F > cutoff.UnixNano() {
		return er.N
	}
	n := int64(0)
	for _, s := range er.R {
		if s > cutoff.Unix() {
			n++
		}
	}
	return n
}

func bfSum(p *profileRec, name, prop string, within time.Duration) float64 {
	er := p.Events[name]
	if er == nil {
		return 0
	}
	if within == 0 || er.F > snapNow.Add(-within).UnixNano() {
		return er.S[prop]
	}
	total := 0.0
	for i, s := range er.R {
		if s > snapNow.Add(-within).Unix() {
			total += er.RV[prop][i]
		}
	}
	return total
}

func bfTrait(p *profileRec, k string) any {
	if tr, ok := p.Traits[k]; ok {
		return tr.V
	}
	return nil
}

const day = 24 * time.Hour

func TestPreviewMatchesBruteForce(t *testing.T) {
	ctx := context.Background()
	e := demoEngine(t, 2000)
	stored := storedProfiles(t, e)
	cases := []struct {
		rule string
		fn   func(p *profileRec) bool
	}{
		{`traits.plan == "pro"`, func(p *profileRec) bool { return bfTrait(p, "plan") == "pro" }},
		{`traits.plan == "pro" && event_count("Order Completed", "30d") >= 2 && sum("Order Completed", "revenue") >= 100`,
			func(p *profileRec) bool {
				return bfTrait(p, "plan") == "pro" && bfCount(p, "Order Completed", 30*day) >= 2 && bfSum(p, "Order Completed", "revenue", 0) >= 100
			}},
		{`traits.plan in ["free", "starter"] || event_count("Page Viewed") > 10`,
			func(p *profileRec) bool {
				pl := bfTrait(p, "plan")
				return pl == "free" || pl == "starter" || bfCount(p, "Page Viewed", 0) > 10
			}},
		{`days_since(last_seen) <= 30 && !has_event("Order Completed", "90d")`,
			func(p *profileRec) bool {
				return snapNow.Sub(unixTime(p.Last)).Hours()/24 <= 30 && bfCount(p, "Order Completed", 90*day) == 0
			}},
		{`sum("Order Completed", "revenue", "2w") > 50`,
			func(p *profileRec) bool { return bfSum(p, "Order Completed", "revenue", 14*day) > 50 }},
		// Not plannable: runs on the VM.
		{`len(identities.email) > 0 && any(identities.email, # endsWith ".com")`,
			func(p *profileRec) bool {
				for _, id := range p.IDs {
					if id.T == "email" && len(id.V) > 4 && id.V[len(id.V)-4:] == ".com" {
						return true
					}
				}
				return false
			}},
	}
	for _, c := range cases {
		want := 0
		for _, p := range stored {
			if c.fn(p) {
				want++
			}
		}
		res, err := e.Preview(ctx, c.rule, PreviewOptions{Sample: 5})
		if err != nil {
			t.Fatalf("%s: %v", c.rule, err)
		}
		if res.Count != want || res.Total != len(stored) {
			t.Errorf("%s: count %d of %d, brute force %d of %d (plan %s)", c.rule, res.Count, res.Total, want, len(stored), res.Plan)
		}
		if want > 0 && len(res.Sample) != min(5, want) {
			t.Errorf("%s: %d sample rows", c.rule, len(res.Sample))
		}
		for _, s := range res.Sample {
			pid, _ := parsePID(s.ID)
			if !c.fn(stored[pid]) {
				t.Errorf("%s: sample %s does not match", c.rule, s.ID)
			}
			if s.EventCount != stored[pid].Count || s.Email != stored[pid].first("email") {
				t.Errorf("%s: sample %+v differs from the store", c.rule, s)
			}
		}
		if want > 0 && res.Percent != 100*float64(want)/float64(len(stored)) {
			t.Errorf("%s: percent %v", c.rule, res.Percent)
		}
	}
}

func TestPreviewStreamsSampleAndSplitsConsent(t *testing.T) {
	e := basicEngine(t)
	var got []ProfileSummary
	res, err := e.Preview(context.Background(), `has_event("Order Completed")`, PreviewOptions{
		Purpose: "marketing_email", Sample: 1,
		OnSample: func(s []ProfileSummary) { got = s },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Count != 2 || len(got) != 1 || len(res.Sample) != 1 || got[0].ID != res.Sample[0].ID {
		t.Fatalf("count %d, streamed %v, sample %v", res.Count, got, res.Sample)
	}
	// The buyers are Ann, who withdrew marketing_email, and Ben, who never
	// decided (GDPR: no consent by default).
	if res.Eligible != 0 || res.ExcludedNoConsent != 2 {
		t.Errorf("eligible %d, excluded %d; want 0 and 2", res.Eligible, res.ExcludedNoConsent)
	}
	if _, err := e.SetConsent(context.Background(), "user_id:user-ben", ConsentInput{Purpose: "marketing_email", Status: "granted", Jurisdiction: "GDPR"}); err != nil {
		t.Fatal(err)
	}
	res, err = e.Preview(context.Background(), `has_event("Order Completed")`, PreviewOptions{Purpose: "marketing_email"})
	if err != nil || res.Eligible != 1 || res.ExcludedNoConsent != 1 {
		t.Fatalf("after Ben's grant: eligible %d, excluded %d (%v); want 1 and 1", res.Eligible, res.ExcludedNoConsent, err)
	}
	if _, err := e.Preview(context.Background(), `true`, PreviewOptions{Purpose: "email_marketing"}); !errors.Is(err, ErrSegmentPurpose) {
		t.Fatalf("unknown purpose: %v", err)
	}
}

func TestPreviewRuleErrorsAndRowErrors(t *testing.T) {
	e := basicEngine(t)
	_, err := e.Preview(context.Background(), "traits.plan ==", PreviewOptions{})
	var rerr *rules.Error
	if !errors.As(err, &rerr) || rerr.Caret() == "" {
		t.Fatalf("syntax error: %v", err)
	}
	// A runtime error on the profiles whose plan is a string does not stop the run.
	res, err := e.Preview(context.Background(), `traits.plan + 1 > 2`, PreviewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ErrorCount == 0 || len(res.Errors) == 0 || res.Errors[0].ProfileID == "" {
		t.Fatalf("row errors %+v", res)
	}
}

func TestPreviewCancel(t *testing.T) {
	e := basicEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Preview(ctx, `traits.plan == "pro"`, PreviewOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
	// A newer preview cancels the running one: start the second from the
	// first's sample callback, while the first is mid-run.
	var second PreviewResult
	var secondErr error
	var once sync.Once
	_, err := e.Preview(context.Background(), `has_event("Order Completed")`, PreviewOptions{
		Sample: 1,
		OnSample: func([]ProfileSummary) {
			once.Do(func() { second, secondErr = e.Preview(context.Background(), `traits.plan == "pro"`, PreviewOptions{}) })
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("older preview: %v, want context.Canceled", err)
	}
	if secondErr != nil || second.Count != 1 {
		t.Fatalf("newer preview: %+v %v", second, secondErr)
	}
}
