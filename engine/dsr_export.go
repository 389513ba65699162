package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/loupe-cdp/loupe/store"
)

// DSRExportSchema names the layout of a subject access export; see
// README.md ("Access export").
const DSRExportSchema = "loupe.dsr-export/v1"

// DSRExport is everything held about one subject.
type DSRExport struct {
	Schema       string                     `json:"schema"`
	GeneratedAt  time.Time                  `json:"generated_at"`
	Profile      string                     `json:"profile_id"`
	MergedIDs    []string                   `json:"merged_ids"`
	FirstSeen    time.Time                  `json:"first_seen"`
	LastSeen     time.Time                  `json:"last_seen"`
	Identities   []Identity                 `json:"identities"`
	Blocked      []BlockedIdentifier        `json:"blocked_identifiers"`
	Traits       map[string]Trait           `json:"traits"`
	EventSummary map[string]EventStats      `json:"event_summary"`
	Events       []StoredEvent              `json:"events"`
	Consent      []ConsentRecord            `json:"consent_trail"`
	ConsentNow   map[string]ConsentDecision `json:"consent_now"`
	Segments     []string                   `json:"segments"` // saved segments the subject is in now
	Merges       ExportMerges               `json:"merges"`
	Requests     []DSR                      `json:"requests"`
}

// ExportMerges is how the subject's identifiers were joined.
type ExportMerges struct {
	MergedIDs []string       `json:"merged_ids"`
	Links     []Link         `json:"links"`
	Refused   []RefusedMerge `json:"refused"`
}

// ExportSubject gathers everything held about the profile REF names.
func (e *Engine) ExportSubject(ctx context.Context, ref string) (*DSRExport, error) {
	var out *DSRExport
	err := e.db.View(func(t *store.Txn) error {
		pid, err := e.resolve(t, ref)
		if err != nil {
			return err
		}
		p, err := e.loadProfile(t, pid)
		if err != nil {
			return err
		}
		ex := p.export()
		out = &DSRExport{
			Schema: DSRExportSchema, GeneratedAt: e.now().UTC(), Profile: ex.ID, MergedIDs: ex.MergedIDs,
			FirstSeen: ex.FirstSeen, LastSeen: ex.LastSeen, Identities: ex.Identities, Blocked: ex.Blocked,
			Traits: ex.Traits, EventSummary: ex.Events, Events: []StoredEvent{}, Consent: []ConsentRecord{},
			Merges: ExportMerges{MergedIDs: ex.MergedIDs, Links: []Link{}}, Requests: []DSR{},
		}
		for _, m := range append([]uint64{pid}, p.Merged...) {
			if err := t.Iterate(store.EventPrefix(m), store.IterOptions{}, func(k, v []byte) error {
				err := forEachEvent(k, v, func(ns int64, _ uint64, body []byte) error {
					se, err := decodeEvent(m, ns, body)
					if err != nil {
						return err
					}
					se.ProfileID = ex.ID
					out.Events = append(out.Events, se)
					return nil
				})
				if err != nil {
					return fmt.Errorf("event %x: %w", k, err)
				}
				return ctx.Err()
			}); err != nil {
				return err
			}
		}
		slices.SortStableFunc(out.Events, func(a, b StoredEvent) int { return a.Time.Compare(b.Time) })
		err = profileLinks(t, append([]uint64{pid}, p.Merged...), func(_, a, b []byte, r linkRec) error {
			out.Merges.Links = append(out.Merges.Links, Link{From: identString(string(a)), To: identString(string(b)), MessageID: r.M, Time: unixTime(r.T)})
			return nil
		})
		if err != nil {
			return err
		}
		slices.SortStableFunc(out.Merges.Links, func(a, b Link) int { return a.Time.Compare(b.Time) })
		tr, err := e.trail(t, pid)
		if err != nil {
			return err
		}
		for _, x := range tr {
			out.Consent = append(out.Consent, exportConsent(x.rec, x.keyPID, x.hash))
		}
		if c, err := e.compl(); err == nil {
			out.ConsentNow = c.cfg.StateAt(records(tr), e.now(), "")
		}
		return t.Iterate([]byte{store.PrefixRequest}, store.IterOptions{}, func(_, v []byte) error {
			var d DSR
			if json.Unmarshal(v, &d) == nil && d.Profile == ex.ID {
				out.Requests = append(out.Requests, d)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if out.Merges.Refused, err = e.RefusedMerges(ctx, out.Profile); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	segs, err := e.profileSegments(ctx, out.Profile)
	if err != nil {
		return nil, fmt.Errorf("export: segments: %w", err)
	}
	out.Segments = segs
	return out, nil
}

// WriteSubjectExport writes ExportSubject's document to path (mode 0600,
// written to a temporary file and renamed) and records the export in the
// audit log.
func (e *Engine) WriteSubjectExport(ctx context.Context, ref, path string) (*DSRExport, error) {
	ex, err := e.ExportSubject(ctx, ref)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(ex, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".loupe-export-*")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(append(b, '\n'))
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return ex, e.Audit(ctx, AuditExport, ex.Profile, fmt.Sprintf("subject access export: %d events, %d consent records", len(ex.Events), len(ex.Consent)))
}
