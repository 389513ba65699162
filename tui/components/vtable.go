// Package components holds the workbench's reusable widgets: a
// virtualized table, a scrollbar, a scrollable text/JSON pane and a prompt
// dialog.
package components

import (
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/loupe-cdp/loupe/tui/layout"
	"github.com/loupe-cdp/loupe/tui/theme"
)

// Column describes one table column. Width is the minimum width; columns
// with Flex > 0 share the spare width in proportion.
type Column struct {
	Title string
	Width int
	Flex  int
	Right bool
}

// RowFunc returns the cells of row i, or ok=false when the row has not
// been fetched yet (the table draws a placeholder).
type RowFunc func(i int) (cells []string, ok bool)

// Table is a virtualized table: it knows only how many rows there are and
// renders just the visible ones, asking RowFunc for each. Rendered rows are
// cached until Invalidate, so a frame costs the same at 1k or 1M rows.
type Table struct {
	Cols      []Column
	ColCursor int // the selected column, -1 for none
	SortCol   int // column marked as the sort key, -1 for none

	n, cursor, top int
	width, height  int // height includes the header line
	widths         []int
	cache          map[int]string
	cacheRows      int
}

// NewTable returns an empty table.
func NewTable(cols []Column) *Table {
	return &Table{Cols: cols, SortCol: -1, cache: map[int]string{}}
}

// SetSize sets the table's outer size (the header line included).
func (t *Table) SetSize(w, h int) {
	if w != t.width || h != t.height {
		t.width, t.height = w, h
		t.layout()
		t.Invalidate()
	}
	t.clamp()
}

// SetColumns replaces the columns.
func (t *Table) SetColumns(cols []Column) {
	t.Cols = cols
	if t.ColCursor >= len(cols) {
		t.ColCursor = len(cols) - 1
	}
	t.layout()
	t.Invalidate()
}

// SetLen sets the row count, keeping the cursor in range.
func (t *Table) SetLen(n int) {
	t.n = n
	t.clamp()
	t.Invalidate()
}

// Len is the row count.
func (t *Table) Len() int { return t.n }

// Reset moves to the first row.
func (t *Table) Reset() { t.cursor, t.top = 0, 0; t.Invalidate() }

// Invalidate drops the rendered-row cache (data arrived or changed).
func (t *Table) Invalidate() { clear(t.cache); t.cacheRows = 0 }

// Cursor is the selected row index (0 when empty).
func (t *Table) Cursor() int { return t.cursor }

// Rows is the number of body rows that fit.
func (t *Table) Rows() int { return max(0, t.height-1) }

// Visible is the range of rows on screen, [from, to).
func (t *Table) Visible() (int, int) { return t.top, min(t.n, t.top+t.Rows()) }

// Window is the range of rows worth having fetched: the visible rows and
// a screenful either side, [from, to).
func (t *Table) Window() (int, int) {
	r := max(1, t.Rows())
	return max(0, t.top-r), min(t.n, t.top+2*r)
}

// Move moves the cursor by delta rows.
func (t *Table) Move(delta int) { t.SetCursor(t.cursor + delta) }

// SetCursor puts the cursor on row i and scrolls it into view.
func (t *Table) SetCursor(i int) {
	t.cursor = i
	t.clamp()
}

// HalfPage is half the visible rows, at least 1.
func (t *Table) HalfPage() int { return max(1, t.Rows()/2) }

// Page is the visible rows, at least 1.
func (t *Table) Page() int { return max(1, t.Rows()) }

// MoveCol moves the column cursor.
func (t *Table) MoveCol(delta int) {
	if len(t.Cols) == 0 {
		return
	}
	t.ColCursor = min(len(t.Cols)-1, max(0, t.ColCursor+delta))
}

func (t *Table) clamp() {
	if t.n == 0 {
		t.cursor, t.top = 0, 0
		return
	}
	t.cursor = min(t.n-1, max(0, t.cursor))
	r := max(1, t.Rows())
	if t.cursor < t.top {
		t.top = t.cursor
	}
	if t.cursor >= t.top+r {
		t.top = t.cursor - r + 1
	}
	t.top = max(0, min(t.top, t.n-r))
}

// layout gives each column its width: minimums first, then the spare
// width to flex columns. One cell is kept for the scrollbar and one space
// separates columns; the first cell of a row holds the cursor glyph.
func (t *Table) layout() {
	t.widths = make([]int, len(t.Cols))
	avail := t.width - 2 - max(0, len(t.Cols)-1) // cursor glyph, scrollbar, separators
	used, flex := 0, 0
	for i, c := range t.Cols {
		t.widths[i] = c.Width
		used += c.Width
		flex += c.Flex
	}
	spare := avail - used
	if spare > 0 && flex > 0 {
		given := 0
		last := -1
		for i, c := range t.Cols {
			if c.Flex > 0 {
				add := spare * c.Flex / flex
				t.widths[i] += add
				given += add
				last = i
			}
		}
		t.widths[last] += spare - given
	}
	for spare < 0 {
		// Too narrow: shrink the widest column until it fits.
		w := 0
		for i := range t.widths {
			if t.widths[i] > t.widths[w] {
				w = i
			}
		}
		if t.widths[w] <= 1 {
			break
		}
		t.widths[w]--
		spare++
	}
}

// Widths is each column's rendered width.
func (t *Table) Widths() []int { return t.widths }

func (t *Table) renderCells(cells []string) string {
	var b strings.Builder
	for i, w := range t.widths {
		if i > 0 {
			b.WriteByte(' ')
		}
		c := ""
		if i < len(cells) {
			c = cells[i]
		}
		b.WriteString(layout.Cell(c, w, t.Cols[i].Right))
	}
	return b.String()
}

// View renders the header and the visible rows, exactly the table's size.
func (t *Table) View(row RowFunc, st theme.Styles) string {
	if t.width <= 0 || t.height <= 0 {
		return ""
	}
	lines := make([]string, 0, t.height)
	// Header.
	var hb strings.Builder
	hb.WriteString(" ")
	for i, w := range t.widths {
		if i > 0 {
			hb.WriteByte(' ')
		}
		title := t.Cols[i].Title
		if i == t.SortCol {
			title += theme.GlyphSortDesc
		}
		if i == t.ColCursor {
			title = "[" + title + "]"
			hb.WriteString(st.ColActive.Render(layout.Cell(title, w, t.Cols[i].Right)))
		} else {
			hb.WriteString(st.ColHeader.Render(layout.Cell(title, w, t.Cols[i].Right)))
		}
	}
	lines = append(lines, layout.FitLine(hb.String(), t.width))

	rows := t.Rows()
	bar := Scrollbar(rows, t.n, t.top)
	if len(t.cache) > 4*rows+16 {
		t.Invalidate()
	}
	for y := 0; y < rows; y++ {
		i := t.top + y
		var body string
		if i < t.n {
			s, ok := t.cache[i]
			if !ok {
				cells, loaded := row(i)
				s = t.renderCells(cells)
				if loaded {
					t.cache[i] = s
				}
			}
			if i == t.cursor {
				body = theme.GlyphCursor + st.Cursor.Render(s)
			} else {
				body = " " + s
			}
		}
		body = layout.FitLine(body, t.width-1)
		lines = append(lines, body+st.Muted.Render(bar[y]))
	}
	return strings.Join(lines, "\n")
}

// Scrollbar renders an h-cell vertical scrollbar for n rows with top at
// the first visible row: a track with a thumb sized to the visible part.
func Scrollbar(h, n, top int) []string {
	out := make([]string, h)
	if h <= 0 {
		return out
	}
	if n <= h {
		for i := range out {
			out[i] = " "
		}
		return out
	}
	thumb := max(1, h*h/n)
	pos := 0
	if n > h {
		pos = int(int64(top) * int64(h-thumb) / int64(n-h))
	}
	for i := range out {
		if i >= pos && i < pos+thumb {
			out[i] = theme.GlyphThumb
		} else {
			out[i] = theme.GlyphTrack
		}
	}
	return out
}

// RangeText is "1,234–1,267 of 1,000,000" for the visible rows.
func (t *Table) RangeText() string {
	if t.n == 0 {
		return "0 of 0"
	}
	from, to := t.Visible()
	return layout.Thousands(from+1) + "–" + layout.Thousands(to) + " of " + layout.Thousands(t.n)
}

// truncate is ansi.Truncate with an ellipsis.
func truncate(s string, w int) string { return ansi.Truncate(s, w, theme.GlyphEllipsis) }
