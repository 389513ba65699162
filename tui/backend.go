package tui

import (
	"context"
	"errors"

	"github.com/loupe-cdp/loupe/engine"
	"github.com/loupe-cdp/loupe/tui/common"
)

// coreEngine is what every engine build has.
type coreEngine interface {
	Dir() string
	Stats(ctx context.Context) (engine.Stats, error)
	ProfileIndex(ctx context.Context, q engine.ProfileQuery) (*engine.ProfileIndex, error)
	Summaries(ctx context.Context, ids []string) ([]engine.ProfileSummary, error)
	Profile(ctx context.Context, ref string) (*engine.Profile, error)
	Events(ctx context.Context, ref, cursor string, limit int) (engine.EventPage, error)
	SearchIdentifiers(ctx context.Context, prefix string, limit int) ([]engine.IdentifierMatch, error)
}

// NewBackend adapts an engine to what the workbench calls. Methods the
// engine has are used directly; while the engine still lacks some, the
// adapter answers with what it can (see fallback).
func NewBackend(e *engine.Engine) common.Backend {
	if b, ok := any(e).(common.Backend); ok {
		return b
	}
	return fallback{e}
}

// fallback stands in for engine methods not landed yet (Reveal, until
// the audit log lands).
type fallback struct{ *engine.Engine }

var errNoAudit = errors.New("this engine build has no audit log: reveal is unavailable")

func (f fallback) Reveal(ctx context.Context, profileID, reason string) error {
	if r, ok := any(f.Engine).(interface {
		Reveal(context.Context, string, string) error
	}); ok {
		return r.Reveal(ctx, profileID, reason)
	}
	if a, ok := any(f.Engine).(interface {
		Audit(ctx context.Context, action, profileID, detail string) error
	}); ok {
		return a.Audit(ctx, "reveal", profileID, reason)
	}
	return errNoAudit
}

