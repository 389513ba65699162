package engine

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/loupe-cdp/loupe/engine/audit"
	"github.com/loupe-cdp/loupe/engine/consent"
	"github.com/loupe-cdp/loupe/store"
)

// Audit actions.
const (
	AuditExport        = audit.Export
	AuditReveal        = audit.Reveal
	AuditRectification = audit.Rectification
	AuditErasure       = audit.Erasure
	AuditUnmerge       = audit.Unmerge
	AuditSegmentExport = audit.SegmentExport
	AuditConsentSet    = audit.ConsentSet
	AuditDSROpen       = audit.DSROpen
	AuditDSRClose      = audit.DSRClose
	AuditUnsuppress    = audit.Unsuppress
	AuditGC            = audit.GC
)

// AuditEntry is one entry of the audit log.
type AuditEntry = audit.View

// AuditBreak is one place the audit chain does not verify.
type AuditBreak = audit.Break

// AuditVerifyResult is the outcome of verifying the audit log.
type AuditVerifyResult struct {
	OK      bool         `json:"ok"`
	Entries int          `json:"entries"`
	Breaks  []AuditBreak `json:"breaks"`
}

// Audit appends an entry to the audit log: the engine's actor (the OS user
// unless Options.Actor says otherwise), the time, the action, a profile id
// ("p42", or "" when none; never an identifier) and a free-text detail
// that must not hold personal data either. The log is append-only and
// hash-chained.
func (e *Engine) Audit(ctx context.Context, action, profileID, detail string) error {
	action = strings.ReplaceAll(action, ".", "_") // "segment.export" is segment_export
	if err := audit.Check(action, profileID); err != nil {
		return err
	}
	c, err := e.compl()
	if err != nil {
		return err
	}
	c.auditMu.Lock()
	defer c.auditMu.Unlock()
	err = e.db.Update(func(t *store.Txn) error {
		hb, err := t.Get(store.MetaKey("audit/head"))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		head, err := consent.ParseHead(hb)
		if err != nil {
			return fmt.Errorf("audit head: %w", err)
		}
		en := audit.Entry{Seq: head.Seq + 1, Time: e.now().UnixNano(), Actor: e.actor, Action: action, Profile: profileID, Detail: detail}
		if head.Seq > 0 {
			en.Prev = hex.EncodeToString(head.Hash[:])
		}
		b, h, err := audit.Encode(&en)
		if err != nil {
			return err
		}
		if err := t.Set(store.AuditKey(en.Seq), b); err != nil {
			return err
		}
		return t.Set(store.MetaKey("audit/head"), consent.Head{Seq: en.Seq, Hash: h}.Bytes())
	})
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// AuditLog lists the audit log, oldest first.
func (e *Engine) AuditLog(ctx context.Context) ([]AuditEntry, error) {
	out, _, err := e.readAudit(ctx)
	return out, err
}

// VerifyAudit recomputes the audit chain and names each break.
func (e *Engine) VerifyAudit(ctx context.Context) (AuditVerifyResult, error) {
	_, res, err := e.readAudit(ctx)
	return res, err
}

func (e *Engine) readAudit(ctx context.Context) ([]AuditEntry, AuditVerifyResult, error) {
	v := audit.NewVerifier()
	out := []AuditEntry{}
	var head []byte
	err := e.db.View(func(t *store.Txn) error {
		if err := t.Iterate([]byte{store.PrefixAudit}, store.IterOptions{}, func(k, val []byte) error {
			if len(k) != 9 {
				return fmt.Errorf("audit key %x: %w", k, store.ErrBadKey)
			}
			if view, ok := v.Add(store.Uint64(k, 1), val); ok {
				out = append(out, view)
			}
			return ctx.Err()
		}); err != nil {
			return err
		}
		var err error
		head, err = t.Get(store.MetaKey("audit/head"))
		if errors.Is(err, store.ErrNotFound) {
			err = nil
		}
		return err
	})
	if err != nil {
		return nil, AuditVerifyResult{}, fmt.Errorf("audit log: %w", err)
	}
	br := v.Finish(head)
	if br == nil {
		br = []AuditBreak{}
	}
	return out, AuditVerifyResult{OK: len(br) == 0, Entries: v.Entries(), Breaks: br}, nil
}
