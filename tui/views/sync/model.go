// Package sync is the Sync tab: the sources of sources.yaml with their
// kind, interval, last run, rows, lag, cursor and last error, and runs of
// one source or all of them with live progress.
//
// A run is a tea.Cmd that calls the engine's sync runner; the runner's
// progress reports go through a channel that a second tea.Cmd drains, one
// report per message, re-armed after each (Update never sends to the
// program and never does engine work). esc cancels the run's context:
// every committed page and its checkpoint are one transaction, so the next
// run resumes where the cancelled one stopped.
package sync

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	lsync "github.com/loupe-cdp/loupe/engine/sync"
	"github.com/loupe-cdp/loupe/tui/common"
	"github.com/loupe-cdp/loupe/tui/components"
	"github.com/loupe-cdp/loupe/tui/layout"
	"github.com/loupe-cdp/loupe/tui/theme"
)

// Model is the sync view.
type Model struct {
	c    *common.Context
	Keys *KeyMap
	w, h int

	table     *components.Table
	statusReq common.Latest
	sources   []lsync.SourceStatus
	loaded    bool
	missing   bool // no sources.yaml
	loadErr   string

	run run
}

// run is the state of the session's latest sync run.
type run struct {
	gen       uint64 // one per run; reports of older runs are dropped
	active    bool
	cancel    context.CancelFunc
	over      chan struct{} // closed when the runner has returned
	cancelled bool          // esc was pressed
	names     []string      // the run's sources, in order
	current   string        // the source being synced
	results   map[string]lsync.Result
	pages     map[string]int
	done      int // sources finished
	reports   int // progress reports taken (moves the activity marker)
	finished  bool
	err       string // the run as a whole failed (bad sources.yaml)
}

// New returns the sync view.
func New(c *common.Context) *Model {
	m := &Model{c: c, Keys: DefaultKeyMap(), table: components.NewTable(columns())}
	m.table.ColCursor = -1
	return m
}

func columns() []components.Column {
	return []components.Column{
		{Title: "", Width: 1},
		{Title: "NAME", Width: 10, Flex: 1},
		{Title: "KIND", Width: 8},
		{Title: "EVERY", Width: 5},
		{Title: "LAST RUN", Width: 8},
		{Title: "ROWS", Width: 7, Right: true},
		{Title: "LAG", Width: 6},
		{Title: "CURSOR", Width: 8, Flex: 1},
		{Title: "LAST ERROR", Width: 10, Flex: 2},
	}
}

// Title implements common.View.
func (m *Model) Title() string { return "Sync" }

// Init loads the sources' status.
func (m *Model) Init() tea.Cmd { return m.reload() }

func (m *Model) reload() tea.Cmd {
	ctx, gen := m.statusReq.Start(m.c.Ctx)
	return loadStatus(ctx, m.c.Backend, gen, m.c.Now)
}

// Loading implements common.View: the status loads or a sync runs.
func (m *Model) Loading() bool { return m.statusReq.Busy() || m.run.active }

// Running reports a sync in flight (for tests).
func (m *Model) Running() bool { return m.run.active }

// Sources is the status shown (for tests).
func (m *Model) Sources() []lsync.SourceStatus { return m.sources }

// Results are the latest run's results by source (for tests).
func (m *Model) Results() map[string]lsync.Result { return m.run.results }

// Capturing implements common.View: the view has no text field.
func (m *Model) Capturing() bool { return false }

// SetSize implements common.View.
func (m *Model) SetSize(w, h int) {
	m.w, m.h = w, h
	m.table.SetSize(w, m.tableHeight())
}

// panelHeight is the run panel under the table: a rule, the state, the
// bar, the counts and the selected source's detail.
const panelHeight = 5

func (m *Model) tableHeight() int { return max(1, m.h-1-panelHeight) }

// Update implements common.View.
func (m *Model) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case statusMsg:
		if !m.statusReq.Accept(msg.gen) {
			return nil
		}
		m.loaded = true
		m.missing = msg.missing
		m.loadErr = ""
		if msg.err != nil {
			m.loadErr = msg.err.Error()
			m.sources = nil
		} else {
			m.sources = msg.sources
		}
		m.table.SetLen(len(m.sources))
		m.table.Invalidate()
		if msg.err != nil {
			return common.Status("sources: "+msg.err.Error(), true)
		}
		return nil
	case progressMsg:
		if msg.run != m.run.gen || !m.run.active {
			return nil // an older run, or this one already reported done
		}
		m.progress(msg.p)
		return waitProgress(msg.run, msg.ch)
	case doneMsg:
		if msg.run != m.run.gen {
			return nil
		}
		return m.finish(msg)
	case common.DataChangedMsg:
		if !m.run.active {
			return m.reload()
		}
	case tea.MouseMsg:
		if msg.Action == tea.MouseActionPress {
			switch msg.Button {
			case tea.MouseButtonWheelDown:
				m.table.Move(3)
			case tea.MouseButtonWheelUp:
				m.table.Move(-3)
			}
		}
	case tea.KeyMsg:
		return m.key(msg)
	}
	return nil
}

func (m *Model) key(k tea.KeyMsg) tea.Cmd {
	nav := m.c.Nav
	switch {
	case key.Matches(k, m.Keys.Sync):
		if s, ok := m.selected(); ok {
			return m.start([]string{s.Name}, s.Name)
		}
		return m.start(nil, "")
	case key.Matches(k, m.Keys.SyncAll):
		var names []string
		for _, s := range m.sources {
			names = append(names, s.Name)
		}
		return m.start(names, "all sources")
	case key.Matches(k, m.Keys.Reload):
		return m.reload()
	case key.Matches(k, nav.Down):
		m.table.Move(1)
	case key.Matches(k, nav.Up):
		m.table.Move(-1)
	case key.Matches(k, nav.HalfDown):
		m.table.Move(m.table.HalfPage())
	case key.Matches(k, nav.HalfUp):
		m.table.Move(-m.table.HalfPage())
	case key.Matches(k, nav.PageDown):
		m.table.Move(m.table.Page())
	case key.Matches(k, nav.PageUp):
		m.table.Move(-m.table.Page())
	case key.Matches(k, nav.Top):
		m.table.SetCursor(0)
	case key.Matches(k, nav.Bottom):
		m.table.SetCursor(m.table.Len() - 1)
	}
	return nil
}

func (m *Model) selected() (lsync.SourceStatus, bool) {
	i := m.table.Cursor()
	if i < 0 || i >= len(m.sources) {
		return lsync.SourceStatus{}, false
	}
	return m.sources[i], true
}

// start begins a run of names (label says what in the status line). One
// run at a time: a second start is refused while one runs.
func (m *Model) start(names []string, label string) tea.Cmd {
	if m.run.active {
		what := "a sync"
		if m.run.current != "" {
			what = "the sync of " + m.run.current
		}
		return common.Status("refused: "+what+" is still running (esc cancels it)", true)
	}
	if len(names) == 0 {
		return common.Status("nothing to sync: declare sources in sources.yaml (see README: Sync)", true)
	}
	parent := m.c.Ctx
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	m.run = run{
		gen:     m.run.gen + 1,
		active:  true,
		cancel:  cancel,
		over:    make(chan struct{}),
		names:   names,
		current: names[0],
		results: map[string]lsync.Result{},
		pages:   map[string]int{},
	}
	m.table.Invalidate()
	ch := make(chan lsync.Progress, 1)
	return tea.Batch(
		runSync(ctx, m.c.Backend, m.run.gen, names, m.c.Now, ch, m.run.over),
		waitProgress(m.run.gen, ch),
		common.Status("syncing "+label+" "+theme.GlyphEllipsis, false),
	)
}

// progress takes one report of the running source.
func (m *Model) progress(p lsync.Progress) {
	r := &m.run
	name := p.Result.Source
	r.reports++
	r.current = name
	r.results[name] = p.Result
	r.pages[name] = p.Pages
	// Reports are coalesced, so a source's done report may be skipped:
	// every source before the reporting one is done.
	if i := slices.Index(r.names, name); i >= 0 {
		r.done = max(r.done, i)
		if p.Done {
			r.done = max(r.done, i+1)
		}
	}
	m.table.Invalidate()
}

// finish takes the run's results, reloads the status table and tells the
// rest of the workbench the store changed.
func (m *Model) finish(msg doneMsg) tea.Cmd {
	r := &m.run
	r.active, r.finished = false, true
	if r.cancel != nil {
		r.cancel()
	}
	for _, res := range msg.results {
		r.results[res.Source] = res
	}
	for src, n := range msg.pages {
		r.pages[src] = n
	}
	r.done = len(msg.results)
	if len(msg.results) > 0 {
		r.current = msg.results[len(msg.results)-1].Source
	}
	cancelled := r.cancelled || errors.Is(msg.err, context.Canceled)
	r.cancelled = cancelled
	if msg.err != nil && !cancelled {
		r.err = msg.err.Error()
	}
	m.table.Invalidate()
	changed := func() tea.Msg { return common.DataChangedMsg{} }
	return tea.Batch(m.reload(), changed, m.doneStatus(msg, cancelled))
}

func (m *Model) doneStatus(msg doneMsg, cancelled bool) tea.Cmd {
	r := &m.run
	tot := m.totals()
	counts := layout.Thousands(tot.Ingested) + " ingested, " + layout.Thousands(tot.Duplicates) + " duplicates, " +
		layout.Thousands(tot.Quarantined) + " quarantined"
	switch {
	case cancelled:
		return common.Status("sync cancelled after "+counts+"; committed pages are kept and the next sync resumes there", false)
	case r.err != "":
		return common.Status("sync: "+r.err, true)
	}
	var failed []string
	for _, res := range msg.results {
		if res.Error != nil {
			failed = append(failed, res.Source+": "+firstLine(*res.Error))
		}
	}
	what := strings.Join(r.names, ", ")
	if len(r.names) > 1 {
		what = strconv.Itoa(len(r.names)) + " sources"
	}
	if len(failed) > 0 {
		return common.Status("synced "+what+" with errors ("+counts+"); "+strings.Join(failed, "; "), true)
	}
	return common.Status("synced "+what+": "+counts, false)
}

// totals adds up the run's results.
func (m *Model) totals() (t struct {
	Fetched, Ingested, Duplicates, Quarantined int64
	Pages                                      int
}) {
	for _, res := range m.run.results {
		t.Fetched += res.Fetched
		t.Ingested += res.Ingested
		t.Duplicates += res.Duplicates
		t.Quarantined += res.Quarantined
	}
	for _, p := range m.run.pages {
		t.Pages += p
	}
	return t
}

// Wait cancels a run still in flight and waits up to d for the runner to
// return, so the engine is not closed under a commit. Call it after the
// program has ended; it reports whether the runner returned in time.
func (m *Model) Wait(d time.Duration) bool {
	if m.run.over == nil {
		return true
	}
	if m.run.cancel != nil {
		m.run.cancel()
	}
	select {
	case <-m.run.over:
		return true
	case <-time.After(d):
		return false
	}
}

// Back implements common.View: esc cancels a running sync.
func (m *Model) Back() (tea.Cmd, bool) {
	if !m.run.active {
		return nil, false
	}
	if m.run.cancelled {
		return common.Status("cancelling: waiting for the current page to commit "+theme.GlyphEllipsis, false), true
	}
	m.run.cancelled = true
	m.run.cancel()
	return common.Status("cancelling the sync "+theme.GlyphEllipsis, false), true
}

// Copy implements common.View: the selected source's last error, or its
// name.
func (m *Model) Copy() (string, bool) {
	s, ok := m.selected()
	if !ok {
		return "", false
	}
	if s.LastError != "" {
		return s.LastError, true
	}
	return s.Name, true
}

// ShortHelp implements common.View.
func (m *Model) ShortHelp() []key.Binding {
	k, n := m.Keys, m.c.Nav
	switch {
	case m.run.active:
		return []key.Binding{withHelp(m.c.Global.Back, "cancel sync"), n.Down, n.Up, k.Reload}
	case !m.loaded || len(m.sources) == 0:
		return []key.Binding{k.Reload}
	}
	return []key.Binding{n.Down, n.Up, k.Sync, k.SyncAll, k.Reload}
}

// FullHelp implements common.View.
func (m *Model) FullHelp() [][]key.Binding {
	k, n := m.Keys, m.c.Nav
	return [][]key.Binding{
		{n.Up, n.Down, n.Top, n.Bottom, n.HalfDown, n.HalfUp, n.PageDown, n.PageUp},
		{k.Sync, k.SyncAll, k.Reload, withHelp(m.c.Global.Back, "cancel a running sync")},
	}
}

func withHelp(b key.Binding, desc string) key.Binding {
	b.SetHelp(b.Help().Key, desc)
	return b
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
