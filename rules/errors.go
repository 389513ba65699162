package rules

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Error is a compile error in a rule, with its position in the source.
// Line is 1-based and Column is 0-based (counted in runes), like expr's
// file.Error, so an editor can place a marker directly.
type Error struct {
	Line       int
	Column     int
	Message    string
	Suggestion string // e.g. "event_count"; empty when there is none
	Snippet    string // the source line the error is on
}

// Error formats the error as "line:col: message (did you mean x?)".
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d:%d: %s", e.Line, e.Column, e.Message)
	if e.Suggestion != "" {
		fmt.Fprintf(&b, " (did you mean %s?)", e.Suggestion)
	}
	return b.String()
}

// Caret renders the source line with a caret under the column:
//
//	traits.plan == "pro" && evnt_count("Order Completed") > 1
//	                        ^
func (e *Error) Caret() string {
	if e.Snippet == "" {
		return ""
	}
	line := strings.ReplaceAll(e.Snippet, "\t", " ")
	col := e.Column
	if n := utf8.RuneCountInString(line); col > n {
		col = n
	}
	return line + "\n" + strings.Repeat(" ", col) + "^"
}

// ErrSegmentCycle is returned (wrapped) by Eval when in_segment references
// form a cycle.
var ErrSegmentCycle = errors.New("rules: in_segment cycle")

// ErrUnknownSegment is returned (wrapped) by Eval when in_segment names a
// segment that EvalOptions.Segments does not resolve.
var ErrUnknownSegment = errors.New("rules: unknown segment")

// RowError is a runtime error on one profile. The profile does not match;
// the run goes on.
type RowError struct {
	ProfileID string
	Err       error
}

// Error implements error.
func (e RowError) Error() string { return fmt.Sprintf("profile %s: %v", e.ProfileID, e.Err) }

// Unwrap returns the underlying error.
func (e RowError) Unwrap() error { return e.Err }

// newError builds an *Error for the rune offset from in src.
func newError(src string, from int, msg string) *Error {
	e := &Error{Line: 1, Message: msg}
	lineStart := 0
	runes := 0
	for i, r := range src {
		if runes == from {
			break
		}
		if r == '\n' {
			lineStart = i + 1
			e.Line++
			e.Column = 0
		} else {
			e.Column++
		}
		runes++
	}
	lineEnd := strings.IndexByte(src[lineStart:], '\n')
	if lineEnd < 0 {
		e.Snippet = src[lineStart:]
	} else {
		e.Snippet = src[lineStart : lineStart+lineEnd]
	}
	return e
}

// levenshtein is the edit distance between a and b.
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// suggest returns the closest candidate to name within a distance that
// scales with the name's length, or "".
func suggest(name string, candidates []string) string {
	best, bestD := "", 1<<30
	limit := max(2, utf8.RuneCountInString(name)/3)
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		d := levenshtein(strings.ToLower(name), strings.ToLower(c))
		if d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= limit {
		return best
	}
	return ""
}
