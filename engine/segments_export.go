package engine

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"

	"github.com/loupe-cdp/loupe/engine/identity"
	"github.com/loupe-cdp/loupe/rules"
	"github.com/loupe-cdp/loupe/store"
)

// ExportOptions shape a segment export.
type ExportOptions struct {
	Format string // "csv" or "ndjson"
	// Columns: id, email, user_id, phone, anonymous_id, device_id (the first
	// identifier of that type), first_seen, last_seen, event_count, or
	// trait.NAME. Default: id, email, user_id and the key traits.
	Columns []string
	// Target names where the rows went (a file name), for the audit entry.
	Target string
}

// ExportResult says what an export wrote and what it left out.
type ExportResult struct {
	Segment             string   `json:"segment"`
	Version             int      `json:"version"`
	Purpose             string   `json:"purpose"`
	Columns             []string `json:"columns"`
	Matched             int      `json:"matched"`               // profiles the rule matches
	Exported            int      `json:"exported"`              // rows written
	SuppressedNoConsent int      `json:"suppressed_no_consent"` // matched, but consent does not allow the purpose
	Suppressed          int      `json:"suppressed"`            // erased or suppressed subjects left out
	// ConsentChecked: the segment has a purpose and every row was checked
	// against the consent ledger (jurisdiction defaults included).
	ConsentChecked bool `json:"consent_checked"`
}

// ErrExportFormat: an unknown export format or column.
var ErrExportFormat = errors.New("bad export option")

var identityColumns = []string{identity.Email, identity.UserID, identity.Phone, identity.AnonymousID, identity.DeviceID}

func (e *Engine) exportColumns(cols []string) ([]string, error) {
	if len(cols) == 0 {
		cols = []string{"id", identity.Email, identity.UserID}
		for _, k := range e.cfg.Profiles.KeyTraits {
			cols = append(cols, "trait."+k)
		}
		return cols, nil
	}
	for _, c := range cols {
		switch {
		case c == "id", c == "first_seen", c == "last_seen", c == "event_count":
		case strings.HasPrefix(c, "trait.") && len(c) > len("trait."):
		case slices.Contains(identityColumns, c), slices.Contains(e.cfg.Identity.ExtraTraits, c):
		default:
			return nil, fmt.Errorf("%w: unknown column %q (columns: id, %s, first_seen, last_seen, event_count, trait.NAME)",
				ErrExportFormat, c, strings.Join(identityColumns, ", "))
		}
	}
	return cols, nil
}

// ExportSegment writes the members of a saved segment to w, one row per
// profile, in profile-id order. Profiles whose consent does not allow the
// segment's purpose are left out and counted;
// erased or suppressed subjects never appear: each member is re-read from
// the store and checked against the suppression list as it is written.
// Every export is written to the audit log.
func (e *Engine) ExportSegment(ctx context.Context, name string, w io.Writer, opts ExportOptions) (ExportResult, error) {
	if opts.Format != "csv" && opts.Format != "ndjson" {
		return ExportResult{}, fmt.Errorf("%w: format %q (want csv or ndjson)", ErrExportFormat, opts.Format)
	}
	cols, err := e.exportColumns(opts.Columns)
	if err != nil {
		return ExportResult{}, err
	}
	seg, err := e.Segment(ctx, name)
	if err != nil {
		return ExportResult{}, err
	}
	r, err := rules.Compile(seg.Rule, rules.CompileOptions{Name: name})
	if err != nil {
		return ExportResult{}, fmt.Errorf("segment %q: stored rule: %w", name, err)
	}
	filter := seg.Purpose != ""
	res := ExportResult{Segment: name, Version: seg.Version, Purpose: seg.Purpose, Columns: cols, ConsentChecked: filter}

	var pids []uint64
	err = e.withSnapshot(ctx, func(s *snapState) error {
		purpose := ""
		if filter {
			purpose = seg.Purpose
		}
		rr, err := e.evalSnap(ctx, s, r, purpose, 0, nil)
		if err != nil {
			return err
		}
		res.Matched = rr.Count
		for _, row := range s.byPID(rr.Matches) {
			if filter && !s.table.Row(row).Consent[seg.Purpose] {
				res.SuppressedNoConsent++
				continue
			}
			pids = append(pids, s.rowPID[row])
		}
		return nil
	})
	if err != nil {
		return res, err
	}

	bw := bufio.NewWriterSize(w, 64<<10)
	var cw *csv.Writer
	if opts.Format == "csv" {
		cw = csv.NewWriter(bw)
		if err := cw.Write(cols); err != nil {
			return res, err
		}
	}
	record := make([]string, len(cols))
	obj := make(map[string]any, len(cols))
	err = e.db.View(func(t *store.Txn) error {
		for i, pid := range pids {
			if i%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			p, err := e.loadProfile(t, pid)
			if errors.Is(err, ErrNotFound) {
				res.Suppressed++ // gone since the snapshot: erased or merged away
				continue
			}
			if err != nil {
				return err
			}
			ids := make([]identity.ID, len(p.IDs))
			for k, id := range p.IDs {
				ids[k] = identity.ID{Type: id.T, Value: id.V}
			}
			if e.isSuppressed(ids) {
				res.Suppressed++
				continue
			}
			if cw != nil {
				for k, c := range cols {
					record[k] = cellText(exportCell(p, c))
				}
				if err := cw.Write(record); err != nil {
					return err
				}
			} else {
				clear(obj)
				for _, c := range cols {
					obj[c] = exportCell(p, c)
				}
				b, err := json.Marshal(obj)
				if err != nil {
					return err
				}
				bw.Write(b)
				if err := bw.WriteByte('\n'); err != nil {
					return err
				}
			}
			res.Exported++
		}
		return nil
	})
	if cw != nil {
		cw.Flush()
		if err == nil {
			err = cw.Error()
		}
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return res, fmt.Errorf("export segment %q: %w", name, err)
	}
	detail := fmt.Sprintf("segment=%q version=%d format=%s target=%q exported=%d suppressed_no_consent=%d suppressed=%d purpose=%q actor=%q at=%s",
		name, seg.Version, opts.Format, opts.Target, res.Exported, res.SuppressedNoConsent, res.Suppressed, seg.Purpose, e.actor, e.now().UTC().Format(time.RFC3339))
	if err := segmentAudit(ctx, e, "segment.export", detail); err != nil {
		return res, fmt.Errorf("export segment %q: audit: %w", name, err)
	}
	return res, nil
}

// segmentAudit writes an audit entry for a segment action. It goes through
// the engine's audit hook; tests replace it to see the entries.
var segmentAudit = func(ctx context.Context, e *Engine, action, detail string) error {
	return e.auditHook(ctx, action, "", detail)
}

func exportCell(p *profileRec, col string) any {
	switch col {
	case "id":
		return pidString(p.PID)
	case "first_seen":
		return unixTime(p.First).Format(time.RFC3339Nano)
	case "last_seen":
		return unixTime(p.Last).Format(time.RFC3339Nano)
	case "event_count":
		return p.Count
	}
	if k, ok := strings.CutPrefix(col, "trait."); ok {
		if tr, ok := p.Traits[k]; ok {
			return tr.V
		}
		return nil
	}
	if v := p.first(col); v != "" {
		return v
	}
	return nil
}

func cellText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
