package sync

import (
	"slices"
	"strconv"
	"strings"
	"time"

	lsync "github.com/loupe-cdp/loupe/engine/sync"
	"github.com/loupe-cdp/loupe/tui/layout"
	"github.com/loupe-cdp/loupe/tui/theme"
)

// Glyphs of a source's state (never colour alone).
const (
	glyphRunning = theme.GlyphInfo     // ● syncing now
	glyphQueued  = theme.GlyphEllipsis // … waiting in this run
	glyphNever   = "-"                 // never ran
	glyphEmpty   = "░"                 // the progress bar's track
	glyphPulse   = "▒"                 // activity while the total is unknown
)

// state is a source's glyph: the run's view of it while it runs, else its
// stored status.
func (m *Model) state(s lsync.SourceStatus) string {
	r := &m.run
	if r.active {
		if i := slices.Index(r.names, s.Name); i >= 0 {
			switch {
			case i < r.done:
				if res, ok := r.results[s.Name]; ok && res.Error != nil {
					return theme.GlyphErr
				}
				return theme.GlyphOK
			case s.Name == r.current:
				return glyphRunning
			default:
				return glyphQueued
			}
		}
	}
	switch {
	case s.LastError != "":
		return theme.GlyphErr
	case s.LastRun.IsZero():
		return glyphNever
	}
	return theme.GlyphOK
}

// row renders source i.
func (m *Model) row(i int) ([]string, bool) {
	if i >= len(m.sources) {
		return nil, false
	}
	s := m.sources[i]
	last := "never"
	if !s.LastRun.IsZero() {
		last = layout.Ago(s.LastRun, m.c.Now())
	}
	lag := "-"
	if s.LagKnown {
		lag = compact(s.Lag)
	}
	cursor := s.Cursor
	if cursor == "" {
		cursor = "-"
	}
	errCell := ""
	if s.LastError != "" {
		errCell = theme.GlyphErr + " " + firstLine(s.LastError)
	}
	return []string{m.state(s), s.Name, s.Kind, compact(s.Interval), last, layout.Thousands(s.Rows), lag, cursor, errCell}, true
}

// compact formats a duration in at most two units: 30s, 5m, 1h30m, 3d.
func compact(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		s := strconv.Itoa(int(d/time.Minute)) + "m"
		if sec := int(d%time.Minute) / int(time.Second); sec > 0 {
			s += strconv.Itoa(sec) + "s"
		}
		return s
	case d < 48*time.Hour:
		s := strconv.Itoa(int(d/time.Hour)) + "h"
		if mn := int(d%time.Hour) / int(time.Minute); mn > 0 {
			s += strconv.Itoa(mn) + "m"
		}
		return s
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d"
}

// View implements common.View.
func (m *Model) View() string {
	if m.w <= 0 || m.h <= 0 {
		return ""
	}
	st := m.c.Styles
	title := m.titleLine()
	var body string
	switch {
	case !m.loaded:
		body = "\n  " + theme.GlyphBusy + " reading sources.yaml " + theme.GlyphEllipsis
	case m.loadErr != "":
		body = "\n" + st.Error.Render("  "+theme.GlyphErr+" "+m.loadErr) +
			"\n\n  Fix sources.yaml in the data dir, then press " + m.Keys.Reload.Help().Key +
			".\n  `loupe sources list` shows the same error; see README: Sync."
	case m.missing || len(m.sources) == 0:
		body = m.howTo()
	default:
		body = m.table.View(m.row, st) + "\n" + m.panel()
	}
	return layout.Fit(title+"\n"+body, m.w, m.h)
}

func (m *Model) titleLine() string {
	st := m.c.Styles
	left := st.PaneTitle.Render("Sync") + " · sources.yaml"
	right := ""
	if m.loaded && m.loadErr == "" && !m.missing {
		right = layout.Thousands(len(m.sources)) + " sources"
	}
	lw, rw := layout.Width(left), layout.Width(right)
	return left + strings.Repeat(" ", max(1, m.w-lw-rw)) + st.Muted.Render(right)
}

// howTo is shown when there is no sources.yaml (or it declares nothing).
func (m *Model) howTo() string {
	st := m.c.Styles
	head := "No sources.yaml in the data dir: there is nothing to sync yet."
	if !m.missing {
		head = "sources.yaml declares no sources: there is nothing to sync yet."
	}
	lines := []string{
		"",
		"  " + theme.GlyphInfo + " " + head,
		"",
		"  Create sources.yaml in the data dir, for example:",
		"",
		st.Accent.Render("    sources:"),
		st.Accent.Render("      - name: exports"),
		st.Accent.Render("        kind: file                # file | postgres | http"),
		st.Accent.Render("        interval: 5m"),
		st.Accent.Render("        file:"),
		st.Accent.Render("          path: exports/*.ndjson  # relative to the data dir"),
		"",
		"  then press " + m.Keys.Reload.Help().Key + " to reload. PostgreSQL and HTTP sources, mappings and",
		"  ${ENV} secrets: see README: Sync (`loupe sources test NAME` tries one).",
	}
	return strings.Join(lines, "\n")
}

// panel is the run's state under the table: exactly panelHeight lines.
func (m *Model) panel() string {
	st := m.c.Styles
	r := &m.run
	w := m.w
	lines := []string{st.Muted.Render(strings.Repeat("─", w))}
	t := m.totals()
	sync, all := m.Keys.Sync.Help().Key, m.Keys.SyncAll.Help().Key
	var state string
	switch {
	case !r.active && !r.finished:
		state = glyphNever + " No sync in this session · " + sync + " syncs the selected source · " + all + " syncs all"
	case r.active && r.cancelled:
		state = glyphRunning + " Cancelling " + r.current + " " + theme.GlyphEllipsis + " (the page in flight commits or rolls back whole)"
	case r.active:
		state = glyphRunning + " Syncing " + r.current + " (" + strconv.Itoa(min(r.done+1, len(r.names))) + " of " + strconv.Itoa(len(r.names)) + ")" +
			" · page " + strconv.Itoa(r.pages[r.current]+1) + " · esc cancels"
	case r.cancelled:
		state = st.Error.Render(theme.GlyphErr+" Cancelled") + " after " + strconv.Itoa(t.Pages) + " committed pages; the next sync resumes from the checkpoint"
	case r.err != "":
		state = st.Error.Render(theme.GlyphErr + " " + firstLine(r.err))
	default:
		failed := 0
		var elapsed int64
		for _, res := range r.results {
			if res.Error != nil {
				failed++
			}
			elapsed += res.ElapsedMS
		}
		what := strings.Join(r.names, ", ")
		if failed > 0 {
			state = st.Error.Render(theme.GlyphErr+" Synced "+what) + " · " + strconv.Itoa(failed) + " of " + strconv.Itoa(len(r.names)) + " failed"
		} else {
			state = st.OK.Render(theme.GlyphOK+" Synced "+what) + " in " + seconds(elapsed)
		}
	}
	lines = append(lines, state, m.bar(w))
	counts := "fetched " + layout.Thousands(t.Fetched) + " · ingested " + layout.Thousands(t.Ingested) +
		" · duplicates " + layout.Thousands(t.Duplicates) + " · quarantined " + layout.Thousands(t.Quarantined) +
		" · pages " + strconv.Itoa(t.Pages)
	if !r.active && !r.finished {
		counts = st.Muted.Render(counts)
	}
	lines = append(lines, counts, m.detail())
	for i := range lines {
		lines[i] = layout.FitLine(lines[i], w)
	}
	return strings.Join(lines, "\n")
}

func seconds(ms int64) string {
	return strconv.FormatFloat(float64(ms)/1000, 'f', 1, 64) + "s"
}

// bar is the progress bar over the run's sources: the finished ones fill
// it; while a source runs (its total is not known in advance) a marker
// moves with every progress report.
func (m *Model) bar(w int) string {
	st := m.c.Styles
	r := &m.run
	n := max(1, len(r.names))
	label := " " + strconv.Itoa(r.done) + "/" + strconv.Itoa(len(r.names)) + " sources"
	if !r.active && !r.finished {
		label = " idle"
	}
	bw := max(4, w-2-layout.Width(" 99/99 sources"))
	filled := bw * min(r.done, n) / n
	if r.finished && !r.cancelled && r.err == "" {
		filled = bw
	}
	cells := make([]string, bw)
	for i := range cells {
		if i < filled {
			cells[i] = theme.GlyphBar
		} else {
			cells[i] = glyphEmpty
		}
	}
	if r.active && filled < bw {
		pulse := min(3, bw-filled)
		span := bw - filled - pulse + 1
		at := filled + (r.reports*2)%span
		for i := at; i < at+pulse; i++ {
			cells[i] = glyphPulse
		}
	}
	return "[" + st.Bar.Render(strings.Join(cells, "")) + "]" + label
}

// detail is the selected source's full cursor and last error.
func (m *Model) detail() string {
	st := m.c.Styles
	s, ok := m.selected()
	if !ok {
		return ""
	}
	out := s.Name + " · cursor " + orDash(s.Cursor)
	if s.LastError != "" {
		return out + " · " + st.Error.Render(theme.GlyphErr+" "+firstLine(s.LastError))
	}
	if s.Last != nil {
		out += " · last run ingested " + layout.Thousands(s.Last.Ingested) + " of " + layout.Thousands(s.Last.Fetched) + " fetched"
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
