// Package profiles is the Profiles tab: a virtualized list over every
// profile in the store, identifier search, rule filter, frequency sheet,
// and a detail pane with trait provenance, identities and the event
// timeline.
package profiles

import (
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/loupe-cdp/loupe/engine"
	"github.com/loupe-cdp/loupe/tui/common"
	"github.com/loupe-cdp/loupe/tui/components"
)

// Focus is the pane that takes navigation keys.
type Focus int

// Panes, in tab order.
const (
	FocusList Focus = iota
	FocusTraits
	FocusIdentities
	FocusEvents
	FocusJSON
	FocusFreq
)

type inputMode int

const (
	inputNone inputMode = iota
	inputSearch
	inputFilter
)

// Model is the profiles view.
type Model struct {
	c    *common.Context
	Keys *KeyMap
	w, h int

	// The list. headGen and fullGen are the index generations whose head
	// (newest profiles) and full index were shown, so a late head never
	// replaces a full index.
	headGen, fullGen uint64
	table            *components.Table
	sort             engine.SortKey
	rule             string
	ix               Index
	indexReq         common.Latest
	pages            map[int][]engine.ProfileSummary
	inflight         map[int]bool
	listErr          string

	// Search and filter input.
	input     components.Input
	mode      inputMode
	search    string // the search shown in the list, "" for none
	searchReq common.Latest
	filterErr string

	focus Focus

	// Detail.
	detailOpen  bool
	profileReq  common.Latest
	profile     *engine.Profile
	traitNames  []string
	traitCursor int
	identCursor int
	eventsReq   common.Latest
	events      []engine.StoredEvent
	eventsNext  string
	eventCursor int
	detailErr   string
	json        components.TextPane

	// Frequency sheet.
	freqOpen  bool
	freqTrait string
	freq      []common.ValueCount
	freqTotal int
	freqReq   common.Latest
	freqTable *components.Table

	// Personal data.
	revealed  map[string]bool
	prompt    *components.Prompt
	revealReq common.Latest
	revealFor string
}

// New returns the profiles view.
func New(c *common.Context) *Model {
	m := &Model{
		c:         c,
		Keys:      DefaultKeyMap(),
		pages:     map[int][]engine.ProfileSummary{},
		inflight:  map[int]bool{},
		revealed:  map[string]bool{},
		prompt:    components.NewPrompt(),
		freqTable: components.NewTable(freqColumns()),
	}
	m.table = components.NewTable(m.columns())
	m.table.ColCursor = 1
	m.freqTable.ColCursor = -1
	m.input.Width = 60
	return m
}

// Title implements common.View.
func (m *Model) Title() string { return "Profiles" }

// Init loads the first index.
func (m *Model) Init() tea.Cmd { return m.reload() }

// reload asks for a new index with the current sort and rule. The default
// list (last seen, no rule) first shows the newest profiles from a bounded
// scan; the full index replaces them when it arrives.
func (m *Model) reload() tea.Cmd {
	ctx, gen := m.indexReq.Start(m.c.Ctx)
	q := engine.ProfileQuery{Sort: m.sort, Rule: m.rule}
	if q.Sort == engine.SortLastSeen && q.Rule == "" {
		return tea.Batch(loadHead(ctx, m.c.Backend, gen), loadIndex(ctx, m.c.Backend, gen, q))
	}
	return loadIndex(ctx, m.c.Backend, gen, q)
}

// Loading implements common.View.
func (m *Model) Loading() bool {
	return m.indexReq.Busy() || m.searchReq.Busy() || m.profileReq.Busy() || m.eventsReq.Busy() ||
		m.freqReq.Busy() || m.revealReq.Busy() || len(m.inflight) > 0
}

// Capturing implements common.View: a focused text field or dialog takes
// every key.
func (m *Model) Capturing() bool { return m.mode != inputNone || m.prompt.IsOpen() }

// Focused is the focused pane (for tests).
func (m *Model) Focused() Focus { return m.focus }

// Cursor is the selected list row (for tests).
func (m *Model) Cursor() int { return m.table.Cursor() }

// Len is the number of rows in the list (for tests).
func (m *Model) Len() int { return m.table.Len() }

// SetSize implements common.View.
func (m *Model) SetSize(w, h int) {
	m.w, m.h = w, h
	m.layout()
}

// keyTraitCols is where the key-trait columns start.
const keyTraitCols = 3

func (m *Model) columns() []components.Column {
	cols := []components.Column{
		{Title: "ID", Width: 8},
		{Title: "EMAIL", Width: 12, Flex: 3},
		{Title: "USER ID", Width: 7, Flex: 2},
	}
	for _, t := range m.c.KeyTraits {
		cols = append(cols, components.Column{Title: strings.ToUpper(t), Width: 6, Flex: 1})
	}
	when := "LAST SEEN"
	if m.sort == engine.SortFirstSeen {
		when = "FIRST SEEN"
	}
	cols = append(cols, components.Column{Title: "EVENTS", Width: 6, Right: true}, components.Column{Title: when, Width: 10})
	return cols
}

func (m *Model) sortColumn() int {
	n := len(m.table.Cols)
	if m.sort == engine.SortEvents {
		return n - 2
	}
	return n - 1
}

// The Context's key traits are the list columns; the trait of column i,
// or "".
func (m *Model) traitOfColumn(i int) string {
	if i >= keyTraitCols && i < keyTraitCols+len(m.c.KeyTraits) {
		return m.c.KeyTraits[i-keyTraitCols]
	}
	return ""
}

// Wide is the width from which list and detail sit side by side; below
// it they stack.
const Wide = 160

// listHeight is the table's height (header included) in the current
// layout.
func (m *Model) listHeight() int {
	h := m.h - m.topLines()
	if m.detailOpen && m.w < Wide {
		return max(4, min(h/3, 12))
	}
	return max(1, h)
}

func (m *Model) listWidth() int {
	if m.detailOpen && m.w >= Wide {
		return m.w * 2 / 5
	}
	return m.w
}

// topLines is the title line plus the input's error line.
func (m *Model) topLines() int {
	if m.mode == inputFilter && m.filterErr != "" {
		return 2
	}
	return 1
}

func (m *Model) layout() {
	m.table.SetSize(m.listWidth(), m.listHeight())
	m.freqTable.SetSize(m.listWidth(), m.listHeight())
	dw, dh := m.detailSize()
	m.json.SetSize(dw, dh)
}

func (m *Model) detailSize() (int, int) {
	if m.w >= Wide {
		return m.w - m.listWidth() - 1, m.h - m.topLines()
	}
	return m.w, m.h - m.topLines() - m.listHeight()
}

// Update implements common.View.
func (m *Model) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case indexMsg:
		if msg.head && msg.gen == m.fullGen {
			return nil // the full index of this request came first
		}
		if !m.indexReq.Accept(msg.gen) {
			return nil // stale: a newer sort or filter was asked for
		}
		if msg.err != nil {
			return m.indexFailed(msg.err)
		}
		if !msg.head {
			m.fullGen = msg.gen
			if _, wasHead := m.ix.(headIndex); wasHead && m.headGen == msg.gen {
				// Same list, now complete: keep the reader's place.
				cur := m.table.Cursor()
				m.setIndex(msg.ix)
				m.table.SetCursor(cur)
				return m.fetchWindow()
			}
		} else {
			m.headGen = msg.gen
		}
		m.filterErr = ""
		if m.mode == inputFilter {
			m.closeInput()
		}
		m.listErr = ""
		m.setIndex(msg.ix)
		return m.fetchWindow()
	case pageMsg:
		return m.gotPage(msg)
	case searchMsg:
		if !m.searchReq.Accept(msg.gen) {
			return nil
		}
		if msg.err != nil {
			return common.Status("search: "+msg.err.Error(), true)
		}
		m.showSearch(msg.prefix, msg.matches)
		return m.fetchWindow()
	case profileMsg:
		if !m.profileReq.Accept(msg.gen) {
			return nil
		}
		if msg.err != nil {
			m.detailErr = msg.err.Error()
			if errors.Is(msg.err, engine.ErrNotFound) {
				return common.Status("no such profile", true)
			}
			return common.Status("profile: "+msg.err.Error(), true)
		}
		m.setProfile(msg.p)
		ctx, gen := m.eventsReq.Start(m.c.Ctx)
		return loadEvents(ctx, m.c.Backend, gen, msg.p.ID, "", false)
	case eventsMsg:
		if !m.eventsReq.Accept(msg.gen) {
			return nil
		}
		if msg.err != nil {
			return common.Status("events: "+msg.err.Error(), true)
		}
		if msg.append {
			m.events = append(m.events, msg.page.Events...)
		} else {
			m.events, m.eventCursor = msg.page.Events, 0
		}
		m.eventsNext = msg.page.Next
		return nil
	case freqMsg:
		if !m.freqReq.Accept(msg.gen) {
			return nil
		}
		if msg.err != nil {
			m.freqOpen = false
			m.focus = FocusList
			return common.Status("frequency: "+msg.err.Error(), true)
		}
		m.freq, m.freqTrait = msg.values, msg.trait
		m.freqTotal = 0
		for _, v := range msg.values {
			m.freqTotal += v.Count
		}
		m.freqTable.SetLen(len(msg.values))
		m.freqTable.Reset()
		return nil
	case revealMsg:
		if !m.revealReq.Accept(msg.gen) {
			return nil
		}
		if msg.err != nil {
			return common.Status("reveal: "+msg.err.Error(), true)
		}
		m.revealed[msg.id] = true
		m.table.Invalidate()
		m.refreshJSON()
		return common.Status("revealed personal data of "+msg.id+" (written to the audit log)", false)
	case components.PromptResult:
		if msg.ID != "reveal" {
			return nil
		}
		if !msg.OK {
			return common.Status("reveal cancelled", false)
		}
		ctx, gen := m.revealReq.Start(m.c.Ctx)
		return reveal(ctx, m.c.Backend, gen, m.revealFor, msg.Value)
	case common.OpenProfileMsg:
		return m.openDetail(msg.Ref)
	case common.DataChangedMsg:
		// A sync ingested events: list again (a search keeps its matches
		// until it is cleared).
		if m.search == "" {
			return m.reload()
		}
		return nil
	case tea.MouseMsg:
		return m.mouse(msg)
	case tea.KeyMsg:
		return m.key(msg)
	}
	return nil
}

func (m *Model) indexFailed(err error) tea.Cmd {
	if m.mode == inputFilter {
		m.filterErr = err.Error()
		m.layout()
		return nil
	}
	m.listErr = err.Error()
	return common.Status(err.Error(), true)
}

func (m *Model) setIndex(ix Index) {
	m.ix = ix
	clear(m.pages)
	clear(m.inflight)
	m.table.SetColumns(m.columns())
	m.table.SortCol = m.sortColumn()
	m.table.SetLen(ix.Len())
	m.table.Reset()
	m.layout()
}

// showSearch turns search matches into the list: one row per profile, in
// match order.
func (m *Model) showSearch(prefix string, matches []engine.IdentifierMatch) {
	seen := map[string]bool{}
	var ids []string
	for _, mt := range matches {
		if !seen[mt.ProfileID] {
			seen[mt.ProfileID] = true
			ids = append(ids, mt.ProfileID)
		}
	}
	m.search = prefix
	total := 0
	if m.ix != nil {
		total = m.ix.Total()
	}
	// A fresh generation: pages of the previous list are now stale.
	m.indexReq.Cancel()
	m.setIndex(idList{ids: ids, total: total})
}

// fetchWindow asks for the pages around the viewport that are neither
// loaded nor on their way, and forgets pages far from it.
func (m *Model) fetchWindow() tea.Cmd {
	if m.ix == nil {
		return nil
	}
	from, to := m.table.Window()
	if to <= from {
		return nil
	}
	first, last := from/pageSize, (to-1)/pageSize
	for p := range m.pages {
		if p < first-4 || p > last+4 {
			delete(m.pages, p)
		}
	}
	var cmds []tea.Cmd
	for p := first; p <= last; p++ {
		if _, ok := m.pages[p]; ok || m.inflight[p] {
			continue
		}
		m.inflight[p] = true
		cmds = append(cmds, loadPage(m.c.Ctx, m.c.Backend, m.indexReq.Gen(), m.ix, p))
	}
	return tea.Batch(cmds...)
}

func (m *Model) gotPage(msg pageMsg) tea.Cmd {
	if msg.gen != m.indexReq.Gen() {
		return nil // a page of an older list
	}
	delete(m.inflight, msg.page)
	if msg.err != nil {
		return common.Status("profiles: "+msg.err.Error(), true)
	}
	m.pages[msg.page] = msg.rows
	m.table.Invalidate()
	return m.fetchWindow()
}

// summary is row i if its page is loaded.
func (m *Model) summary(i int) (engine.ProfileSummary, bool) {
	rows, ok := m.pages[i/pageSize]
	if !ok || i%pageSize >= len(rows) {
		return engine.ProfileSummary{}, false
	}
	return rows[i%pageSize], true
}

// selectedID is the profile under the list cursor.
func (m *Model) selectedID() string {
	if m.ix == nil || m.table.Len() == 0 {
		return ""
	}
	if s, ok := m.summary(m.table.Cursor()); ok {
		return s.ID
	}
	if ids := m.ix.IDs(m.table.Cursor(), 1); len(ids) == 1 {
		return ids[0]
	}
	return ""
}

// currentID is the profile the view is about: the open detail's, or the
// list cursor's.
func (m *Model) currentID() string {
	if m.detailOpen && m.profile != nil {
		return m.profile.ID
	}
	return m.selectedID()
}

func (m *Model) openDetail(ref string) tea.Cmd {
	if ref == "" {
		return nil
	}
	m.detailOpen = true
	m.detailErr = ""
	if m.focus == FocusList || m.focus == FocusFreq {
		m.focus = FocusTraits
	}
	if m.profile == nil || m.profile.ID != ref {
		m.profile, m.events, m.eventsNext = nil, nil, ""
		m.eventsReq.Cancel()
	}
	m.layout()
	ctx, gen := m.profileReq.Start(m.c.Ctx)
	return tea.Batch(loadProfile(ctx, m.c.Backend, gen, ref), m.fetchWindow())
}

func (m *Model) setProfile(p *engine.Profile) {
	m.profile = p
	m.traitNames = slices.Sorted(maps.Keys(p.Traits))
	m.traitCursor = min(m.traitCursor, max(0, len(m.traitNames)-1))
	m.identCursor = min(m.identCursor, max(0, len(p.Identities)-1))
}

func (m *Model) closeInput() {
	m.mode = inputNone
	m.input.Blur()
	m.filterErr = ""
	m.layout()
}

func (m *Model) openInput(mode inputMode, value string) {
	m.mode = mode
	m.input.SetValue(value)
	m.input.Focus()
	m.filterErr = ""
	if mode == inputSearch {
		m.input.Prompt = "/ "
		m.input.Placeholder = "identifier prefix: email, user_id, anonymous_id, phone, or type:prefix"
	} else {
		m.input.Prompt = "filter> "
		m.input.Placeholder = `rule, e.g. traits.plan == "pro"`
	}
	m.layout()
}

// Back implements common.View: esc closes the innermost thing open.
func (m *Model) Back() (tea.Cmd, bool) {
	switch {
	case m.focus == FocusJSON:
		m.focus = FocusEvents
		return nil, true
	case m.detailOpen:
		m.detailOpen = false
		m.profileReq.Cancel()
		m.eventsReq.Cancel()
		m.focus = FocusList
		if m.freqOpen {
			m.focus = FocusFreq
		}
		m.layout()
		return m.fetchWindow(), true
	case m.freqOpen:
		m.freqOpen = false
		m.freqReq.Cancel()
		m.focus = FocusList
		return nil, true
	case m.search != "":
		m.search = ""
		return m.reload(), true
	case m.rule != "":
		m.rule = ""
		return m.reload(), true
	}
	return nil, false
}

func (m *Model) key(k tea.KeyMsg) tea.Cmd {
	if m.prompt.IsOpen() {
		return m.prompt.Update(k)
	}
	if m.mode != inputNone {
		return m.inputKey(k)
	}
	nav := m.c.Nav
	g := m.c.Global
	switch {
	case key.Matches(k, m.Keys.Search):
		m.openInput(inputSearch, m.search)
		return nil
	case key.Matches(k, m.Keys.Filter):
		m.openInput(inputFilter, m.rule)
		return nil
	case key.Matches(k, m.Keys.Sort):
		m.sort = (m.sort + 1) % 3
		m.search = ""
		return tea.Batch(m.reload(), common.Status("sorted by "+m.sort.String(), false))
	case key.Matches(k, m.Keys.Reveal):
		id := m.currentID()
		if id == "" {
			return nil
		}
		m.revealFor = id
		return m.prompt.Open("reveal", "Reveal personal data of "+id,
			"Emails and phones of this profile will be shown unmasked. The reveal and its reason are written to the audit log.",
			"reason (required)", true)
	case key.Matches(k, g.FocusNext):
		m.cycleFocus(1)
		return nil
	case key.Matches(k, g.FocusPrev):
		m.cycleFocus(-1)
		return nil
	}
	switch m.focus {
	case FocusList:
		switch {
		case key.Matches(k, m.Keys.Open):
			return m.openDetail(m.selectedID())
		case key.Matches(k, m.Keys.Frequency):
			t := m.traitOfColumn(m.table.ColCursor)
			if t == "" {
				return common.Status("F: move to a trait column first (h/l)", true)
			}
			return m.openFreq(t)
		case key.Matches(k, nav.Left):
			m.table.MoveCol(-1)
			return nil
		case key.Matches(k, nav.Right):
			m.table.MoveCol(1)
			return nil
		}
		if moveTable(m.table, k, nav) {
			return m.fetchWindow()
		}
	case FocusFreq:
		if key.Matches(k, m.Keys.Open) {
			return m.filterToFreqValue()
		}
		moveTable(m.freqTable, k, nav)
	case FocusTraits:
		if key.Matches(k, m.Keys.Frequency) && len(m.traitNames) > 0 {
			return m.openFreq(m.traitNames[m.traitCursor])
		}
		moveCursor(&m.traitCursor, len(m.traitNames), m.pageRows(), k, nav)
	case FocusIdentities:
		if m.profile != nil {
			moveCursor(&m.identCursor, len(m.profile.Identities), m.pageRows(), k, nav)
		}
	case FocusEvents:
		if key.Matches(k, m.Keys.Open) && m.eventCursor < len(m.events) {
			m.focus = FocusJSON
			m.refreshJSON()
			m.json.Top()
			return nil
		}
		moveCursor(&m.eventCursor, len(m.events), m.pageRows(), k, nav)
		if m.eventCursor >= len(m.events)-5 && m.eventsNext != "" && !m.eventsReq.Busy() && m.profile != nil {
			ctx, gen := m.eventsReq.Start(m.c.Ctx)
			return loadEvents(ctx, m.c.Backend, gen, m.profile.ID, m.eventsNext, true)
		}
	case FocusJSON:
		switch {
		case key.Matches(k, nav.Down):
			m.json.Scroll(1)
		case key.Matches(k, nav.Up):
			m.json.Scroll(-1)
		case key.Matches(k, nav.HalfDown):
			m.json.Scroll(m.json.Page() / 2)
		case key.Matches(k, nav.HalfUp):
			m.json.Scroll(-m.json.Page() / 2)
		case key.Matches(k, nav.PageDown):
			m.json.Scroll(m.json.Page())
		case key.Matches(k, nav.PageUp):
			m.json.Scroll(-m.json.Page())
		case key.Matches(k, nav.Top):
			m.json.Top()
		case key.Matches(k, nav.Bottom):
			m.json.Bottom()
		}
	}
	return nil
}

func (m *Model) pageRows() int { return max(1, m.h/3) }

// SetSort sorts the list by name ("last_seen", "first_seen", "events").
func (m *Model) SetSort(name string) tea.Cmd {
	switch strings.ReplaceAll(strings.TrimSpace(name), " ", "_") {
	case "", "last_seen", "last":
		m.sort = engine.SortLastSeen
	case "first_seen", "first":
		m.sort = engine.SortFirstSeen
	case "events":
		m.sort = engine.SortEvents
	default:
		return common.Status("sort: want last_seen, first_seen or events", true)
	}
	m.search = ""
	return m.reload()
}

// SetIndex shows ix in the list, as a fresh generation (benchmarks and
// other views that hand the profiles view a ready list).
func (m *Model) SetIndex(ix Index) tea.Cmd {
	m.indexReq.Cancel()
	m.search = ""
	m.setIndex(ix)
	return m.fetchWindow()
}
