// Package common is what the root model shares with every view: the
// Context (size, styles, keys, engine, clock), the View interface, status
// and generation plumbing, and layout helpers.
package common

import (
	"context"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/loupe-cdp/loupe/engine"
	lsync "github.com/loupe-cdp/loupe/engine/sync"
	"github.com/loupe-cdp/loupe/tui/keys"
	"github.com/loupe-cdp/loupe/tui/theme"
)

// Backend is the part of *engine.Engine the workbench calls. Every call
// may be slow over a million profiles, so views call it only inside
// tea.Cmds.
type Backend interface {
	Dir() string
	Stats(ctx context.Context) (engine.Stats, error)
	ProfileIndex(ctx context.Context, q engine.ProfileQuery) (*engine.ProfileIndex, error)
	Summaries(ctx context.Context, ids []string) ([]engine.ProfileSummary, error)
	Profile(ctx context.Context, ref string) (*engine.Profile, error)
	Events(ctx context.Context, ref, cursor string, limit int) (engine.EventPage, error)
	SearchIdentifiers(ctx context.Context, prefix string, limit int) ([]engine.IdentifierMatch, error)
	TraitFrequency(ctx context.Context, trait, rule string) ([]ValueCount, error)
	Reveal(ctx context.Context, profileID, reason string) error
	Config() engine.Config
	RecentProfiles(ctx context.Context, n int) ([]string, int, error)
	// WarmSnapshot builds the rules snapshot ahead of the first call that
	// needs it.
	WarmSnapshot(ctx context.Context) error
	// The Sync tab runs sources into the engine and reads their
	// checkpoints and status records (Checkpoint, IngestBatch,
	// Quarantine, Dir).
	lsync.Store
}

// Context is shared by the root model and every view.
type Context struct {
	Ctx       context.Context // cancelled when the program ends
	Backend   Backend
	Styles    theme.Styles
	Global    *keys.Global
	Nav       *keys.Nav
	Now       func() time.Time
	KeyTraits []string
	// ViewKeys are the per-view key bindings from the config; each view
	// applies the actions it knows.
	ViewKeys map[string][]string
}

// View is one tab of the workbench. Views are pointers mutated in place
// by Update; the root model owns them.
type View interface {
	Init() tea.Cmd
	Update(msg tea.Msg) tea.Cmd
	// View renders exactly the size last given to SetSize.
	View() string
	SetSize(w, h int)
	Title() string
	// Capturing reports that a text field has focus: the root model then
	// hands it every key before any global binding.
	Capturing() bool
	// Back handles esc; false means the view is at its top level.
	Back() (tea.Cmd, bool)
	// Loading reports engine work in flight (the spinner shows).
	Loading() bool
	// Copy returns the selected value for `y`.
	Copy() (string, bool)
	ShortHelp() []key.Binding
	FullHelp() [][]key.Binding
}

// StatusMsg shows a message on the status line.
type StatusMsg struct {
	Text string
	Err  bool
}

// Status returns a command that shows text on the status line.
func Status(text string, isErr bool) tea.Cmd {
	return func() tea.Msg { return StatusMsg{Text: text, Err: isErr} }
}

// OpenProfileMsg asks the profiles view to open REF's detail (":profile").
type OpenProfileMsg struct{ Ref string }

// RefreshStatsMsg asks the root model to reload the header counts.
type RefreshStatsMsg struct{}

// DataChangedMsg says the store changed under the workbench (a sync
// ingested events): the root model reloads the header counts and passes
// it to every view, which reloads what it shows.
type DataChangedMsg struct{}

// Latest tracks the newest request of one kind. Every request gets a
// generation number and a context; starting a new one cancels the
// previous, and a result whose generation is not the latest is stale and
// must be dropped (tea.Cmds finish out of order).
type Latest struct {
	gen    uint64
	cancel context.CancelFunc
	busy   bool
}

// Start begins a new request under parent.
func (l *Latest) Start(parent context.Context) (context.Context, uint64) {
	if l.cancel != nil {
		l.cancel()
	}
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	l.gen++
	l.cancel, l.busy = cancel, true
	return ctx, l.gen
}

// Accept reports whether gen is the latest request, and marks it done.
func (l *Latest) Accept(gen uint64) bool {
	if gen != l.gen {
		return false
	}
	l.busy = false
	return true
}

// Cancel abandons the request in flight: its result will be stale.
func (l *Latest) Cancel() {
	if l.cancel != nil {
		l.cancel()
	}
	l.gen++
	l.busy = false
}

// Gen is the latest generation.
func (l *Latest) Gen() uint64 { return l.gen }

// Busy reports a request in flight.
func (l *Latest) Busy() bool { return l.busy }
