package profiles

import (
	"context"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/loupe-cdp/loupe/engine"
	"github.com/loupe-cdp/loupe/tui/common"
)

// Index is an ordered list of profile ids; *engine.ProfileIndex is one.
type Index interface {
	Len() int
	Total() int
	IDs(offset, n int) []string
}

// idList is an Index over search results.
type idList struct {
	ids   []string
	total int
}

func (l idList) Len() int   { return len(l.ids) }
func (l idList) Total() int { return l.total }
func (l idList) IDs(off, n int) []string {
	if off < 0 || off >= len(l.ids) || n <= 0 {
		return nil
	}
	return l.ids[off:min(len(l.ids), off+n)]
}

// headIndex is the first screen of the default list: the newest profiles,
// picked without sorting them all, standing in for the full index until
// it arrives.
// Rows past the head read as not loaded yet.
type headIndex struct {
	ids   []string
	total int
}

func (h headIndex) Len() int   { return h.total }
func (h headIndex) Total() int { return h.total }
func (h headIndex) IDs(off, n int) []string {
	if off < 0 || off >= len(h.ids) || n <= 0 {
		return nil
	}
	return h.ids[off:min(len(h.ids), off+n)]
}

// headSize is how many of the newest profiles the first screen reads.
const headSize = 4 * pageSize

// pageSize is how many rows one Summaries call fetches.
const pageSize = 64

// Messages carry the generation of the request that produced them.
type (
	indexMsg struct {
		gen  uint64
		ix   Index
		head bool // a headIndex; the full index of the same gen follows
		err  error
	}
	pageMsg struct {
		gen  uint64 // the index generation the page belongs to
		page int
		rows []engine.ProfileSummary
		err  error
	}
	searchMsg struct {
		gen     uint64
		prefix  string
		matches []engine.IdentifierMatch
		err     error
	}
	profileMsg struct {
		gen uint64
		p   *engine.Profile
		err error
	}
	eventsMsg struct {
		gen    uint64
		page   engine.EventPage
		append bool
		err    error
	}
	freqMsg struct {
		gen    uint64
		trait  string
		values []common.ValueCount
		err    error
	}
	revealMsg struct {
		gen uint64
		id  string
		err error
	}
)

func loadIndex(ctx context.Context, b common.Backend, gen uint64, q engine.ProfileQuery) tea.Cmd {
	return func() tea.Msg {
		ix, err := b.ProfileIndex(ctx, q)
		if err != nil {
			return indexMsg{gen: gen, err: err}
		}
		return indexMsg{gen: gen, ix: ix}
	}
}

// loadHead reads the newest profiles so the first screen need not wait
// for the whole index.
func loadHead(ctx context.Context, b common.Backend, gen uint64) tea.Cmd {
	return func() tea.Msg {
		ids, total, err := b.RecentProfiles(ctx, headSize)
		if err != nil {
			return indexMsg{gen: gen, head: true, err: err}
		}
		return indexMsg{gen: gen, head: true, ix: headIndex{ids: ids, total: total}}
	}
}

func loadPage(ctx context.Context, b common.Backend, gen uint64, ix Index, page int) tea.Cmd {
	return func() tea.Msg {
		ids := ix.IDs(page*pageSize, pageSize)
		rows, err := b.Summaries(ctx, ids)
		return pageMsg{gen: gen, page: page, rows: rows, err: err}
	}
}

// searchLimit caps the matches a search shows.
const searchLimit = 500

func search(ctx context.Context, b common.Backend, gen uint64, prefix string) tea.Cmd {
	return func() tea.Msg {
		m, err := b.SearchIdentifiers(ctx, prefix, searchLimit)
		return searchMsg{gen: gen, prefix: prefix, matches: m, err: err}
	}
}

func loadProfile(ctx context.Context, b common.Backend, gen uint64, ref string) tea.Cmd {
	return func() tea.Msg {
		p, err := b.Profile(ctx, ref)
		return profileMsg{gen: gen, p: p, err: err}
	}
}

// eventsPerPage is how many events one timeline page loads.
const eventsPerPage = 50

func loadEvents(ctx context.Context, b common.Backend, gen uint64, ref, cursor string, appendPage bool) tea.Cmd {
	return func() tea.Msg {
		p, err := b.Events(ctx, ref, cursor, eventsPerPage)
		return eventsMsg{gen: gen, page: p, append: appendPage, err: err}
	}
}

func loadFreq(ctx context.Context, b common.Backend, gen uint64, trait, rule string) tea.Cmd {
	return func() tea.Msg {
		v, err := b.TraitFrequency(ctx, trait, rule)
		return freqMsg{gen: gen, trait: trait, values: v, err: err}
	}
}

func reveal(ctx context.Context, b common.Backend, gen uint64, id, reason string) tea.Cmd {
	return func() tea.Msg {
		return revealMsg{gen: gen, id: id, err: b.Reveal(ctx, id, reason)}
	}
}
