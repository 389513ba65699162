package rules

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr/vm/runtime"
)

// cursor is the row the VM is evaluating; the rule functions of one
// worker's program read it.
type cursor struct {
	t       *Table
	r       int
	now     time.Time
	nowNs   int64
	segs    map[string]*bitmap
	windows map[string]time.Duration
}

func (c *cursor) window(s string) (cutoffNs, cutoffSec int64, err error) {
	d, ok := c.windows[s]
	if !ok {
		if d, err = ParseWindow(s); err != nil {
			return 0, 0, err
		}
		if c.windows == nil {
			c.windows = map[string]time.Duration{}
		}
		c.windows[s] = d
	}
	cutoffNs, cutoffSec = cutoffs(c.nowNs, d)
	return cutoffNs, cutoffSec, nil
}

// cutoffs returns now-d in ns and the largest whole second s such that an
// event at second t is inside the window exactly when t > s.
func cutoffs(nowNs int64, d time.Duration) (int64, int64) {
	c := nowNs - int64(d)
	s := c / 1e9
	if c%1e9 != 0 && c < 0 {
		s--
	}
	return c, s
}

// daysSince is the number of days from tNs to nowNs; +Inf for the zero time.
func daysSince(nowNs, tNs int64) float64 {
	if tNs == zeroNs {
		return math.Inf(1)
	}
	return float64(nowNs-tNs) / float64(24*time.Hour)
}

func (c *cursor) trait(p ...any) (any, error) {
	col := c.t.traits[p[0].(string)]
	if col == nil {
		return nil, nil
	}
	v, _ := col.get(c.r)
	return v, nil
}

func (c *cursor) eventCount(p ...any) (any, error) {
	e := c.t.events[p[0].(string)]
	if e == nil {
		return 0, nil
	}
	if len(p) == 1 {
		return int(e.cnt(c.r)), nil
	}
	cn, cs, err := c.window(p[1].(string))
	if err != nil {
		return nil, err
	}
	return int(e.windowCount(c.r, cn, cs)), nil
}

func (c *cursor) hasEvent(p ...any) (any, error) {
	n, err := c.eventCount(p...)
	if err != nil {
		return nil, err
	}
	return n.(int) > 0, nil
}

func (c *cursor) lastEvent(p ...any) (any, error) {
	e := c.t.events[p[0].(string)]
	if e == nil {
		return time.Time{}, nil
	}
	return timeOf(e.lastNs(c.r)), nil
}

func (c *cursor) sum(p ...any) (any, error) {
	e := c.t.events[p[0].(string)]
	if e == nil {
		return 0.0, nil
	}
	prop, ok := e.propIdx[p[1].(string)]
	if !ok {
		return 0.0, nil
	}
	if len(p) == 2 {
		return e.sum(c.r, prop, false, 0, 0), nil
	}
	cn, cs, err := c.window(p[2].(string))
	if err != nil {
		return nil, err
	}
	return e.sum(c.r, prop, true, cn, cs), nil
}

func (c *cursor) daysSince(p ...any) (any, error) {
	return daysSince(c.nowNs, nsOf(p[0].(time.Time))), nil
}

func (c *cursor) consented(p ...any) (any, error) {
	b := c.t.consent[p[0].(string)]
	return b != nil && b.get(c.r), nil
}

func (c *cursor) inSegment(p ...any) (any, error) {
	b, ok := c.segs[p[0].(string)]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownSegment, p[0])
	}
	return b.get(c.r), nil
}

func (c *cursor) nowFn(...any) (any, error) { return c.now, nil }

// truthyFn: only the boolean true is true.
func truthyFn(p ...any) (any, error) {
	b, ok := p[0].(bool)
	return ok && b, nil
}

// compareAny applies a comparison operator with the rule language's
// semantics: false when either side is nil or the types cannot be compared;
// otherwise expr's own comparison.
func compareAny(op string, a, b any) (res bool) {
	if a == nil || b == nil {
		return false
	}
	defer func() {
		if recover() != nil {
			res = false
		}
	}()
	switch op {
	case "<":
		return runtime.Less(a, b)
	case "<=":
		return runtime.LessOrEqual(a, b)
	case ">":
		return runtime.More(a, b)
	case ">=":
		return runtime.MoreOrEqual(a, b)
	}
	return false
}

func cmpFn(op string) func(...any) (any, error) {
	return func(p ...any) (any, error) { return compareAny(op, p[0], p[1]), nil }
}

var regexps sync.Map // pattern -> *regexp.Regexp

func compiledRegexp(pattern string) (*regexp.Regexp, error) {
	if re, ok := regexps.Load(pattern); ok {
		return re.(*regexp.Regexp), nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	regexps.Store(pattern, re)
	return re, nil
}

// stringOp applies a string operator: false unless both sides are strings.
func stringOp(op string, a, b any) (bool, error) {
	x, ok1 := a.(string)
	y, ok2 := b.(string)
	if !ok1 || !ok2 {
		return false, nil
	}
	switch op {
	case "startsWith":
		return strings.HasPrefix(x, y), nil
	case "endsWith":
		return strings.HasSuffix(x, y), nil
	case "contains":
		return strings.Contains(x, y), nil
	case "matches":
		re, err := compiledRegexp(y)
		if err != nil {
			return false, err
		}
		return re.MatchString(x), nil
	}
	return false, nil
}

func strFn(op string) func(...any) (any, error) {
	return func(p ...any) (any, error) { return stringOp(op, p[0], p[1]) }
}

// inArray is `x in [a, b, ...]`: true when x == some element (expr's
// equality, so nil in [nil] is true and 1 in [1.0] is true).
func inArray(x any, arr []any) bool {
	for _, e := range arr {
		if runtime.Equal(e, x) {
			return true
		}
	}
	return false
}

func inFn(p ...any) (any, error) {
	arr, _ := p[1].([]any)
	return inArray(p[0], arr), nil
}
