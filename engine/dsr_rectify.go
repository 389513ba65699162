package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/loupe-cdp/loupe/store"
)

// SetTrait rectifies a trait of the profile REF names: the value becomes
// current with provenance source "rectification" and the reason, the value
// it replaces goes to the trait's history, and the change is written to
// the audit log (trait name only, never the value). A later event with a
// newer timestamp replaces a rectified value as it would any other.
func (e *Engine) SetTrait(ctx context.Context, ref, name string, value any, reason string) error {
	name = strings.TrimSpace(name)
	if name == "" {
		return fmt.Errorf("set-trait: no trait name: %w", ErrBadRef)
	}
	if strings.TrimSpace(reason) == "" {
		return fmt.Errorf("set-trait: a rectification needs a reason")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	e.writeMu.Lock()
	var pid uint64
	err := e.db.Update(func(t *store.Txn) error {
		var err error
		if pid, err = e.resolve(t, ref); err != nil {
			return err
		}
		p, err := e.loadProfile(t, pid)
		if err != nil {
			return err
		}
		at := e.now().UnixNano()
		if cur := p.Traits[name]; cur != nil && cur.T >= at {
			at = cur.T + 1 // the rectified value is the current one
		}
		p.setTrait(name, traitVal{V: value, T: at, S: "rectification", R: reason}, e.cfg.Profiles.TraitHistory)
		b, err := encodeProfile(p)
		if err != nil {
			return err
		}
		return t.Set(store.PIDKey(store.PrefixProfile, pid), b)
	})
	if err == nil {
		e.profiles = make(map[uint64]*profileRec)
	}
	e.writeMu.Unlock()
	if err != nil {
		return fmt.Errorf("set-trait: %w", err)
	}
	e.snapshotTouch(pid)
	return e.Audit(ctx, AuditRectification, pidString(pid), fmt.Sprintf("trait %q rectified: %s", name, reason))
}
