// Package layout is the workbench's size arithmetic: fit blocks to exact
// sizes, join them, overlay dialogs, format numbers and times.
package layout

import (
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/loupe-cdp/loupe/tui/theme"
)

// FitLine truncates or pads s to exactly w cells.
func FitLine(s string, w int) string {
	if w <= 0 {
		return ""
	}
	sw := ansi.StringWidth(s)
	if sw > w {
		s = ansi.Truncate(s, w, "")
		sw = ansi.StringWidth(s)
	}
	if sw < w {
		s += strings.Repeat(" ", w-sw)
	}
	return s
}

// Fit makes s exactly w cells wide and h lines high.
func Fit(s string, w, h int) string {
	if h <= 0 {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	var b strings.Builder
	for i := 0; i < h; i++ {
		if i > 0 {
			b.WriteByte('\n')
		}
		l := ""
		if i < len(lines) {
			l = lines[i]
		}
		b.WriteString(FitLine(l, w))
	}
	return b.String()
}

// Cell pads or truncates s to w cells, with an ellipsis when cut; right
// aligns when right is set.
func Cell(s string, w int, right bool) string {
	if w <= 0 {
		return ""
	}
	sw := ansi.StringWidth(s)
	if sw > w {
		return ansi.Truncate(s, w, theme.GlyphEllipsis)
	}
	pad := strings.Repeat(" ", w-sw)
	if right {
		return pad + s
	}
	return s + pad
}

// HJoin puts blocks side by side, each already exactly its width and
// height h, separated by sep.
func HJoin(h int, sep string, blocks ...string) string {
	split := make([][]string, len(blocks))
	for i, b := range blocks {
		split[i] = strings.Split(b, "\n")
	}
	var out strings.Builder
	for y := 0; y < h; y++ {
		if y > 0 {
			out.WriteByte('\n')
		}
		for i := range split {
			if i > 0 {
				out.WriteString(sep)
			}
			if y < len(split[i]) {
				out.WriteString(split[i][y])
			}
		}
	}
	return out.String()
}

// Overlay draws box (already rendered) centred over base (w x h).
func Overlay(base, box string, w, h int) string {
	bl := strings.Split(base, "\n")
	ol := strings.Split(box, "\n")
	bw := 0
	for _, l := range ol {
		bw = max(bw, ansi.StringWidth(l))
	}
	if bw > w {
		bw = w
	}
	x := max(0, (w-bw)/2)
	y := max(0, (h-len(ol))/2)
	for i, l := range ol {
		if y+i >= len(bl) {
			break
		}
		line := FitLine(bl[y+i], w)
		left := ansi.Truncate(line, x, "")
		right := ansi.Cut(line, x+bw, w)
		bl[y+i] = left + FitLine(l, bw) + right
	}
	return strings.Join(bl, "\n")
}

// Thousands formats n with thousands separators: 1,234,567.
func Thousands[T ~int | ~int64](n T) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := itoa(int64(n))
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 && !(neg && b.Len() == 1) {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var buf [20]byte
	i := len(buf)
	for n > 0 {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	return string(buf[i:])
}

// Ago formats t relative to now, compactly: "3m", "5h", "12d", or a date.
func Ago(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return t.UTC().Format("2006-01-02")
	case d < time.Minute:
		return "now"
	case d < time.Hour:
		return itoa(int64(d/time.Minute)) + "m ago"
	case d < 48*time.Hour:
		return itoa(int64(d/time.Hour)) + "h ago"
	case d < 60*24*time.Hour:
		return itoa(int64(d/(24*time.Hour))) + "d ago"
	}
	return t.UTC().Format("2006-01-02")
}

// Width is the display width of s.
func Width(s string) int { return ansi.StringWidth(s) }

// TruncateLeft keeps the last w cells of s, with an ellipsis in front
// when cut (a long path keeps its tail).
func TruncateLeft(s string, w int) string {
	sw := ansi.StringWidth(s)
	if sw <= w {
		return s
	}
	if w <= 1 {
		return ansi.Truncate(theme.GlyphEllipsis, w, "")
	}
	return theme.GlyphEllipsis + ansi.TruncateLeft(s, sw-w+1, "")
}
