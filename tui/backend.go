package tui

import (
	"github.com/loupe-cdp/loupe/engine"
	"github.com/loupe-cdp/loupe/tui/common"
)

// The engine is the workbench's backend; this fails to compile if the
// engine stops offering what the views call.
var _ common.Backend = (*engine.Engine)(nil)

// NewBackend returns the engine as the workbench's backend.
func NewBackend(e *engine.Engine) common.Backend { return e }
