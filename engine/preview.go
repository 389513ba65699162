package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/loupe-cdp/loupe/rules"
)

// PreviewOptions tune a preview.
type PreviewOptions struct {
	// Purpose, when set, splits the count into eligible (consent allows
	// the purpose) and excluded for lack of consent.
	Purpose string
	// Sample is how many matching profiles to return (default 20; negative
	// for none).
	Sample int
	// OnSample, when set, receives the sample as soon as it is known,
	// before the count finishes. It runs on an evaluation goroutine and
	// must return quickly.
	OnSample func([]ProfileSummary)
}

// RuleRowError is a runtime error of a rule on one profile.
type RuleRowError struct {
	ProfileID string `json:"profile_id"`
	Message   string `json:"message"`
}

// PreviewResult is what a rule matches now.
type PreviewResult struct {
	Count             int // matching profiles (suppressed subjects never match)
	Total             int // all profiles
	Percent           float64
	Eligible          int // matches whose consent allows Purpose (Purpose set)
	ExcludedNoConsent int // matches without it
	Suppressed        int // erased or suppressed subjects, never evaluated
	Sample            []ProfileSummary
	Errors            []RuleRowError // the first runtime errors, one per profile
	ErrorCount        int
	Plan              string // how the rule ran ("columnar", "columnar+vm: ...", "vm: ...")
	Elapsed           time.Duration
	Now               time.Time // what now() was
}

// Preview evaluates rule over every profile. A rule that does not compile
// is returned as *rules.Error. A newer Preview on the same Engine cancels
// the one running (it returns context.Canceled), so an editor can call
// Preview on every keystroke.
func (e *Engine) Preview(ctx context.Context, rule string, opts PreviewOptions) (PreviewResult, error) {
	start := time.Now()
	r, err := rules.Compile(rule, rules.CompileOptions{})
	if err != nil {
		return PreviewResult{}, err
	}
	if p := opts.Purpose; p != "" && !slices.Contains(e.cfg.Consent.Purposes, p) {
		return PreviewResult{}, fmt.Errorf("%w: unknown purpose %q (purposes: %s)", ErrSegmentPurpose, p, strings.Join(e.cfg.Consent.Purposes, ", "))
	}
	s := e.snap()
	ctx, cancel := context.WithCancel(ctx)
	s.previewMu.Lock()
	if s.previewCancel != nil {
		s.previewCancel()
	}
	s.previewCancel = cancel
	s.previewMu.Unlock()
	defer cancel()

	sample := opts.Sample
	if sample == 0 {
		sample = 20
	}
	sample = max(sample, 0)
	var out PreviewResult
	err = e.withSnapshot(ctx, func(s *snapState) error {
		res, err := e.evalSnap(ctx, s, r, opts.Purpose, sample, opts.OnSample)
		out = previewResult(e, s, res)
		return err
	})
	out.Elapsed = time.Since(start)
	return out, err
}

// evalSnap runs r over the snapshot (caller holds s.mu for reading).
func (e *Engine) evalSnap(ctx context.Context, s *snapState, r *rules.Rule, purpose string, sample int, onSample func([]ProfileSummary)) (rules.Result, error) {
	eo := rules.EvalOptions{
		Now:      e.now(),
		Purpose:  purpose,
		Sample:   sample,
		Segments: e.segmentResolver(ctx),
	}
	if onSample != nil && sample > 0 {
		eo.OnSample = func(rows []int) {
			sums := make([]ProfileSummary, len(rows))
			for i, row := range rows {
				sums[i] = e.summaryAt(s, row)
			}
			onSample(sums)
		}
	}
	return r.Eval(ctx, s.table, eo)
}

func previewResult(e *Engine, s *snapState, res rules.Result) PreviewResult {
	out := PreviewResult{
		Count: res.Count, Total: res.Total, Eligible: res.Eligible, ExcludedNoConsent: res.ExcludedNoConsent,
		Suppressed: res.Suppressed, ErrorCount: res.ErrorCount, Plan: res.Plan, Now: e.now(),
		Sample: make([]ProfileSummary, 0, len(res.Sample)),
	}
	// Total counts every profile, suppressed subjects included.
	if out.Total > 0 {
		out.Percent = 100 * float64(out.Count) / float64(out.Total)
	}
	for _, row := range res.Sample {
		out.Sample = append(out.Sample, e.summaryAt(s, row))
	}
	for _, re := range res.Errors {
		out.Errors = append(out.Errors, RuleRowError{ProfileID: re.ProfileID, Message: re.Err.Error()})
	}
	return out
}
