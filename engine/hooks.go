package engine

import (
	"context"

	"github.com/loupe-cdp/loupe/engine/identity"
	"github.com/loupe-cdp/loupe/store"
)

// onEvent runs the per-event work of other parts of the engine (consent
// recording) inside the event's unit.
func (e *Engine) onEvent(u *unit, pid uint64, d *decoded) error {
	return e.consentOnEvent(u, pid, &d.ev, &d.consent)
}

// isSuppressed reports whether any identifier is under an erasure
// suppression.
func (e *Engine) isSuppressed(ids []identity.ID) bool { return e.suppressedIDs(ids) }

// moveEventsHook lets records tied to events follow them when unmerge
// moves them from pid from to other profiles (to maps messageId to pid).
func (e *Engine) moveEventsHook(t *store.Txn, from uint64, to map[string]uint64) error {
	return e.moveConsent(t, from, to)
}

// auditHook writes an audit entry.
func (e *Engine) auditHook(ctx context.Context, action, profileID, detail string) error {
	return e.Audit(ctx, action, profileID, detail)
}
