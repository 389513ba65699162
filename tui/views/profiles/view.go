package profiles

import (
	"strconv"
	"strings"

	"github.com/loupe-cdp/loupe/engine"
	"github.com/loupe-cdp/loupe/tui/components"
	"github.com/loupe-cdp/loupe/tui/layout"
	"github.com/loupe-cdp/loupe/tui/theme"
)

const timeFmt = "2006-01-02 15:04"

func freqColumns() []components.Column {
	return []components.Column{
		{Title: "VALUE", Width: 10, Flex: 2},
		{Title: "COUNT", Width: 9, Right: true},
		{Title: "%", Width: 6, Right: true},
		{Title: "", Width: 10, Flex: 2},
	}
}

// cells renders a list row.
func (m *Model) cells(s engine.ProfileSummary) []string {
	id := s.ID
	cells := []string{id, m.show(id, "email", s.Email), s.UserID}
	for _, t := range m.c.KeyTraits {
		v, ok := s.Traits[t]
		c := ""
		if ok {
			c = m.show(id, t, formatValue(v))
		}
		cells = append(cells, c)
	}
	when := s.LastSeen
	if m.sort == engine.SortFirstSeen {
		when = s.FirstSeen
	}
	return append(cells, layout.Thousands(s.EventCount), layout.Ago(when, m.c.Now()))
}

func (m *Model) row(i int) ([]string, bool) {
	if s, ok := m.summary(i); ok {
		c := m.cells(s)
		if !m.masked(s.ID) {
			c[0] = theme.GlyphRevealed + c[0]
		}
		return c, true
	}
	// Not fetched yet: the id is in memory, the rest is on its way.
	if ids := m.ix.IDs(i, 1); len(ids) == 1 {
		return []string{ids[0], theme.GlyphEllipsis}, false
	}
	return []string{theme.GlyphEllipsis}, false
}

func (m *Model) freqRow(i int) ([]string, bool) {
	if i >= len(m.freq) {
		return nil, false
	}
	v := m.freq[i]
	pct := 0.0
	if m.freqTotal > 0 {
		pct = float64(v.Count) * 100 / float64(m.freqTotal)
	}
	bw := m.freqTable.Widths()[3]
	max := m.freq[0].Count // sorted by count, largest first
	n := 0
	if max > 0 {
		n = (v.Count*bw + max - 1) / max
	}
	return []string{v.Value, layout.Thousands(v.Count), strconv.FormatFloat(pct, 'f', 1, 64), strings.Repeat(theme.GlyphBar, n)}, true
}

// View implements common.View.
func (m *Model) View() string {
	if m.w <= 0 || m.h <= 0 {
		return ""
	}
	st := m.c.Styles
	var top []string
	top = append(top, m.titleLine())
	if m.mode == inputFilter && m.filterErr != "" {
		top = append(top, st.Error.Render(theme.GlyphErr+" "+firstLine(m.filterErr)))
	}
	var list string
	if m.freqOpen {
		list = m.freqTable.View(m.freqRow, st)
	} else {
		list = m.table.View(m.row, st)
	}
	body := list
	if m.detailOpen {
		dw, dh := m.detailSize()
		var d string
		if m.focus == FocusJSON {
			d = m.json.View(st)
		} else {
			d = m.detailView(dw, dh)
		}
		if m.w >= Wide {
			sep := strings.TrimSuffix(strings.Repeat(st.Muted.Render("│")+"\n", dh), "\n")
			body = layout.HJoin(dh, "", layout.Fit(list, m.listWidth(), dh), sep, layout.Fit(d, dw, dh))
		} else {
			body = layout.Fit(list, m.w, m.listHeight()) + "\n" + layout.Fit(d, dw, dh)
		}
	}
	out := layout.Fit(strings.Join(top, "\n"), m.w, len(top)) + "\n" + layout.Fit(body, m.w, m.h-len(top))
	if m.prompt.IsOpen() {
		out = layout.Overlay(out, m.prompt.View(st, m.w), m.w, m.h)
	}
	return out
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// titleLine is the view's first line: the input when typing, else what
// the list shows and where the viewport is.
func (m *Model) titleLine() string {
	st := m.c.Styles
	if m.mode != inputNone {
		m.input.Width = m.w
		return m.input.View(st)
	}
	var left []string
	right := ""
	switch {
	case m.freqOpen:
		left = append(left, st.PaneTitle.Render("Frequency of "+m.freqTrait))
		if m.rule != "" {
			left = append(left, "filter: "+m.rule)
		}
		right = layout.Thousands(len(m.freq)) + " values · " + layout.Thousands(m.freqTotal) + " profiles"
	default:
		left = append(left, st.PaneTitle.Render("Profiles"), "sort: "+m.sort.String()+" "+theme.GlyphSortDesc)
		if m.search != "" {
			left = append(left, "search: "+strconv.Quote(m.search))
		}
		if m.rule != "" {
			left = append(left, "filter: "+m.rule)
		}
		right = m.table.RangeText()
		if m.ix != nil && (m.rule != "" || m.search != "") {
			right += " (" + layout.Thousands(m.ix.Len()) + " of " + layout.Thousands(m.ix.Total()) + ")"
		}
	}
	l := strings.Join(left, " · ")
	lw, rw := lipWidth(l), lipWidth(right)
	if lw+rw+1 > m.w {
		l = layout.Cell(l, max(0, m.w-rw-1), false)
		lw = lipWidth(l)
	}
	return l + strings.Repeat(" ", max(1, m.w-lw-rw)) + st.Muted.Render(right)
}

func lipWidth(s string) int { return len([]rune(stripANSI(s))) }

// detailView renders the open profile in w x h.
func (m *Model) detailView(w, h int) string {
	st := m.c.Styles
	p := m.profile
	if p == nil {
		msg := theme.GlyphBusy + " loading profile" + theme.GlyphEllipsis
		if m.detailErr != "" {
			msg = theme.GlyphErr + " " + m.detailErr
		}
		return layout.Fit(msg, w, h)
	}
	pii := theme.GlyphMasked + " PII masked (R reveals)"
	if !m.masked(p.ID) {
		pii = theme.GlyphRevealed + " PII revealed"
	}
	head := []string{st.Title.Render(p.ID), layout.Thousands(int(p.EventCount)) + " events",
		"first " + p.FirstSeen.UTC().Format(timeFmt), "last " + layout.Ago(p.LastSeen, m.c.Now())}
	if len(p.MergedIDs) > 0 {
		head = append(head, "merged: "+strings.Join(p.MergedIDs, ", "))
	}
	head = append(head, pii)
	lines := []string{layout.FitLine(strings.Join(head, " · "), w)}

	bh := h - 1
	lw := w / 2
	rw := w - lw - 1
	// Left: traits, then the selected trait's provenance.
	provH := min(bh/2, 8)
	traitsH := bh - provH
	left := m.section("Traits", len(m.traitNames), m.focus == FocusTraits, lw, traitsH, m.traitCursor, func(i int) string {
		n := m.traitNames[i]
		return layout.Cell(n, min(16, lw/3), false) + " " + m.show(p.ID, n, formatValue(p.Traits[n].Value))
	})
	left += "\n" + m.provenance(lw, provH)
	// Right: identities, then events.
	idH := min(len(p.Identities)+1, max(2, bh/3))
	right := m.section("Identities", len(p.Identities), m.focus == FocusIdentities, rw, idH, m.identCursor, func(i int) string {
		id := p.Identities[i]
		dates := id.FirstSeen.UTC().Format("2006-01-02") + "→" + id.LastSeen.UTC().Format("2006-01-02")
		if rw < 70 {
			dates = id.LastSeen.UTC().Format("2006-01-02")
		}
		return layout.Cell(id.Type, 12, false) + " " + layout.Cell(m.show(p.ID, id.Type, id.Value), max(4, rw-2-12-1-1-len([]rune(dates))), false) + " " + dates
	})
	evTitle := "Events"
	if m.eventsNext != "" {
		evTitle += " (newest first, more below)"
	} else if len(m.events) > 0 {
		evTitle += " (newest first)"
	}
	right += "\n" + m.section(evTitle, len(m.events), m.focus == FocusEvents, rw, bh-idH, m.eventCursor, func(i int) string {
		ev := m.events[i]
		return ev.Time.UTC().Format(timeFmt) + " " + layout.Cell(ev.Type, 8, false) + " " + ev.Name
	})
	sep := strings.TrimSuffix(strings.Repeat(st.Muted.Render("│")+"\n", bh), "\n")
	lines = append(lines, layout.HJoin(bh, "", layout.Fit(left, lw, bh), sep, layout.Fit(right, rw, bh)))
	return strings.Join(lines, "\n")
}

// section renders a titled list with a cursor, scrolled to keep the
// cursor visible, exactly w x h.
func (m *Model) section(title string, n int, focused bool, w, h, cursor int, item func(i int) string) string {
	st := m.c.Styles
	if h <= 0 {
		return ""
	}
	t := title + " (" + layout.Thousands(n) + ")"
	if focused {
		t = st.PaneFocused.Render(theme.GlyphCursor + " " + t)
	} else {
		t = st.PaneTitle.Render("  " + t)
	}
	out := []string{layout.FitLine(t, w)}
	rows := h - 1
	top := 0
	if cursor >= rows {
		top = cursor - rows + 1
	}
	for y := 0; y < rows; y++ {
		i := top + y
		if i >= n {
			if n == 0 && y == 0 {
				out = append(out, st.Muted.Render("  (none)"))
			}
			break
		}
		s := item(i)
		if i == cursor && focused {
			out = append(out, theme.GlyphCursor+" "+st.Cursor.Render(layout.FitLine(s, w-2)))
		} else if i == cursor {
			out = append(out, "› "+s)
		} else {
			out = append(out, "  "+s)
		}
	}
	return layout.Fit(strings.Join(out, "\n"), w, h)
}

// provenance shows where the selected trait's value came from and its
// earlier values.
func (m *Model) provenance(w, h int) string {
	st := m.c.Styles
	p := m.profile
	if h <= 0 {
		return ""
	}
	if p == nil || m.traitCursor >= len(m.traitNames) {
		return layout.Fit("", w, h)
	}
	n := m.traitNames[m.traitCursor]
	tr := p.Traits[n]
	src := tr.Source
	if src == "" {
		src = "event"
	}
	lines := []string{
		st.PaneTitle.Render("  Provenance of " + n),
		"  value " + m.show(p.ID, n, formatValue(tr.Value)),
		"  set   " + tr.Time.UTC().Format(timeFmt) + " by " + src + " " + tr.MessageID,
	}
	if tr.Reason != "" {
		lines = append(lines, "  reason "+tr.Reason)
	}
	if len(tr.History) == 0 {
		lines = append(lines, st.Muted.Render("  no earlier values"))
	} else {
		lines = append(lines, "  earlier values ("+strconv.Itoa(len(tr.History))+"):")
		for _, hv := range tr.History {
			lines = append(lines, "   "+hv.Time.UTC().Format(timeFmt)+" "+m.show(p.ID, n, formatValue(hv.Value))+" "+st.Muted.Render(hv.MessageID))
		}
	}
	return layout.Fit(strings.Join(lines, "\n"), w, h)
}
