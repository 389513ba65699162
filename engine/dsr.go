package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/loupe-cdp/loupe/engine/consent"
	"github.com/loupe-cdp/loupe/store"
)

// Data-subject request types, statuses and outcomes.
const (
	DSRAccess        = "access"
	DSRErasure       = "erasure"
	DSRRectification = "rectification"

	DSROpen   = "open"
	DSRClosed = "closed"

	DSRFulfilled = "fulfilled"
	DSRDenied    = "denied"
	DSRPartial   = "partial"
)

// DSR is one tracked data-subject request. It names the profile by id
// only, so the request log (kept at least 24 months, as the CCPA's
// record-keeping rule asks) holds no personal data once the subject is
// erased.
type DSR struct {
	ID            string     `json:"id"`
	Type          string     `json:"type"`
	Profile       string     `json:"profile"`
	Jurisdiction  string     `json:"jurisdiction"`
	Channel       string     `json:"channel"` // how it arrived: email, web_form, phone, mail, in_person, ...
	Status        string     `json:"status"`
	OpenedAt      time.Time  `json:"opened_at"`
	DueAt         time.Time  `json:"due_at"`
	ClosedAt      *time.Time `json:"closed_at,omitempty"`
	Outcome       string     `json:"outcome,omitempty"`
	Reason        string     `json:"reason,omitempty"` // why it was denied (or partly)
	SubjectErased bool       `json:"subject_erased"`
	Overdue       bool       `json:"overdue"`
	OpenedBy      string     `json:"opened_by"`
	ClosedBy      string     `json:"closed_by,omitempty"`
}

// DSROptions are the optional parts of a new request.
type DSROptions struct {
	Jurisdiction string
	Channel      string
}

func (e *Engine) readDSR(t *store.Txn, id string) (DSR, error) {
	var d DSR
	b, err := t.Get(store.RequestKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return d, fmt.Errorf("request %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return d, err
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("request %s: %w", id, err)
	}
	d.Overdue = d.Status == DSROpen && e.now().After(d.DueAt)
	return d, nil
}

func writeDSR(t *store.Txn, d DSR) error {
	d.Overdue = false // computed on read
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return t.Set(store.RequestKey(d.ID), b)
}

// OpenDSR opens a request of type typ (access, erasure, rectification) for
// the profile REF names, due after the jurisdiction's deadline (GDPR 30
// days, CCPA/CPRA 45; consent.dsr_due_days in loupe.yaml).
func (e *Engine) OpenDSR(ctx context.Context, typ, ref string, opts DSROptions) (DSR, error) {
	if !slices.Contains([]string{DSRAccess, DSRErasure, DSRRectification}, typ) {
		return DSR{}, fmt.Errorf("request type %q: want access, erasure or rectification: %w", typ, ErrBadRef)
	}
	c, err := e.compl()
	if err != nil {
		return DSR{}, err
	}
	jur := consent.Jurisdiction(opts.Jurisdiction)
	if jur == "" {
		jur = consent.Jurisdiction(c.cfg.DefaultJurisdiction)
	}
	ch := strings.TrimSpace(opts.Channel)
	if ch == "" {
		ch = "unspecified"
	}
	now := e.now().UTC()
	var d DSR
	err = e.db.Update(func(t *store.Txn) error {
		pid, err := e.resolve(t, ref)
		if err != nil {
			return err
		}
		seq, err := getUint64(t, store.MetaKey("seq/dsr"))
		if err != nil {
			return err
		}
		seq++
		if err := t.Set(store.MetaKey("seq/dsr"), putUint64(seq)); err != nil {
			return err
		}
		d = DSR{
			ID: fmt.Sprintf("dsr-%06d", seq), Type: typ, Profile: pidString(pid), Jurisdiction: jur, Channel: ch,
			Status: DSROpen, OpenedAt: now, DueAt: now.AddDate(0, 0, c.cfg.DueDays(jur)), OpenedBy: e.actor,
		}
		return writeDSR(t, d)
	})
	if err != nil {
		return DSR{}, fmt.Errorf("open request: %w", err)
	}
	return d, e.Audit(ctx, AuditDSROpen, d.Profile, fmt.Sprintf("%s %s request (%s), due %s", d.ID, typ, jur, d.DueAt.Format("2006-01-02")))
}

// ListDSR lists requests, oldest first; overdue keeps only open requests
// past their due date.
func (e *Engine) ListDSR(ctx context.Context, overdue bool) ([]DSR, error) {
	out := []DSR{}
	now := e.now()
	err := e.db.View(func(t *store.Txn) error {
		return t.Iterate([]byte{store.PrefixRequest}, store.IterOptions{}, func(_, v []byte) error {
			var d DSR
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			d.Overdue = d.Status == DSROpen && now.After(d.DueAt)
			if !overdue || d.Overdue {
				out = append(out, d)
			}
			return nil
		})
	})
	return out, err
}

// CloseDSR closes a request with its outcome (fulfilled, denied, partial);
// a denial or partial response needs the reason.
func (e *Engine) CloseDSR(ctx context.Context, id, outcome, reason string) (DSR, error) {
	if outcome == "" {
		outcome = DSRFulfilled
	}
	if !slices.Contains([]string{DSRFulfilled, DSRDenied, DSRPartial}, outcome) {
		return DSR{}, fmt.Errorf("outcome %q: want fulfilled, denied or partial", outcome)
	}
	if outcome != DSRFulfilled && strings.TrimSpace(reason) == "" {
		return DSR{}, fmt.Errorf("a %s request needs --reason", outcome)
	}
	var d DSR
	err := e.db.Update(func(t *store.Txn) error {
		var err error
		if d, err = e.readDSR(t, id); err != nil {
			return err
		}
		if d.Status == DSRClosed {
			return fmt.Errorf("request %s was closed on %s", id, d.ClosedAt.Format(time.RFC3339))
		}
		now := e.now().UTC()
		d.Status, d.ClosedAt, d.Outcome, d.Reason, d.ClosedBy, d.Overdue = DSRClosed, &now, outcome, reason, e.actor, false
		return writeDSR(t, d)
	})
	if err != nil {
		return DSR{}, fmt.Errorf("close request: %w", err)
	}
	return d, e.Audit(ctx, AuditDSRClose, d.Profile, fmt.Sprintf("%s %s: %s", d.ID, d.Type, outcome))
}
