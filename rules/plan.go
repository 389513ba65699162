package rules

import (
	"fmt"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm/runtime"
)

// pred decides one row. Predicates built by the planner read the table's
// columns directly; VM leaves run a compiled sub-rule on the worker's VM.
type pred func(r int) bool

// planner compiles a checked, rewritten rule tree into a predicate over
// table columns. Shapes it does not know become VM leaves: the subtree is
// printed back to source, compiled once per worker and run per row, so
// `columnar && vm` only pays for the VM on the rows the columnar part lets
// through.
type planner struct {
	t      *Table
	nowNs  int64
	segs   map[string]*bitmap
	w      *worker
	leaves []string // descriptions of VM leaves, for Result.Plan
}

func (p *planner) plan(n ast.Node) (pred, error) {
	if f, ok := p.columnar(n); ok {
		return f, nil
	}
	return p.vmLeaf(n)
}

func (p *planner) vmLeaf(n ast.Node) (pred, error) {
	src := n.String()
	desc := src
	if len(desc) > 60 {
		desc = desc[:57] + "..."
	}
	p.leaves = append(p.leaves, desc)
	return p.w.leaf(src, true)
}

func constPred(b bool) pred {
	if b {
		return func(int) bool { return true }
	}
	return func(int) bool { return false }
}

// flatten collects the operands of a chain of the same boolean operator.
func flatten(n ast.Node, ops ...string) []ast.Node {
	if b, ok := n.(*ast.BinaryNode); ok && (b.Operator == ops[0] || b.Operator == ops[1]) {
		return append(flatten(b.Left, ops...), flatten(b.Right, ops...)...)
	}
	return []ast.Node{n}
}

func (p *planner) all(ns []ast.Node) ([]pred, error) {
	ps := make([]pred, len(ns))
	for i, n := range ns {
		f, err := p.plan(n)
		if err != nil {
			return nil, err
		}
		ps[i] = f
	}
	return ps, nil
}

func andPred(ps []pred) pred {
	switch len(ps) {
	case 2:
		a, b := ps[0], ps[1]
		return func(r int) bool { return a(r) && b(r) }
	case 3:
		a, b, c := ps[0], ps[1], ps[2]
		return func(r int) bool { return a(r) && b(r) && c(r) }
	}
	return func(r int) bool {
		for _, f := range ps {
			if !f(r) {
				return false
			}
		}
		return true
	}
}

func orPred(ps []pred) pred {
	if len(ps) == 2 {
		a, b := ps[0], ps[1]
		return func(r int) bool { return a(r) || b(r) }
	}
	return func(r int) bool {
		for _, f := range ps {
			if f(r) {
				return true
			}
		}
		return false
	}
}

// columnar plans n over columns; ok is false for shapes it does not know.
// It only returns an error-free predicate: the shapes it accepts cannot fail
// at run time, in either path.
func (p *planner) columnar(n ast.Node) (pred, bool) {
	switch n := n.(type) {
	case *ast.BoolNode:
		return constPred(n.Value), true
	case *ast.BinaryNode:
		switch n.Operator {
		case "&&", "and":
			ps, err := p.all(flatten(n, "&&", "and"))
			if err != nil {
				return nil, false
			}
			return andPred(ps), true
		case "||", "or":
			ps, err := p.all(flatten(n, "||", "or"))
			if err != nil {
				return nil, false
			}
			return orPred(ps), true
		case "==", "!=", "<", "<=", ">", ">=", "startsWith", "endsWith", "contains", "matches", "in":
			return p.compare(n.Operator, n.Left, n.Right)
		}
	case *ast.UnaryNode:
		if n.Operator == "!" || n.Operator == "not" {
			f, err := p.plan(n.Node)
			if err != nil {
				return nil, false
			}
			return func(r int) bool { return !f(r) }, true
		}
	case *ast.CallNode:
		name, args := callName(n), n.Arguments
		switch name {
		case "__truthy":
			if c, ok := p.traitSource(args[0]); ok {
				return p.traitPred(c, "==", true), true
			}
		case "__lt", "__le", "__gt", "__ge":
			return p.compare(map[string]string{"__lt": "<", "__le": "<=", "__gt": ">", "__ge": ">="}[name], args[0], args[1])
		case "__startsWith", "__endsWith", "__contains", "__matches":
			return p.compare(strings.TrimPrefix(name, "__"), args[0], args[1])
		case "__in":
			return p.compare("in", args[0], args[1])
		case "has_event":
			if f, ok := p.numeric(&ast.CallNode{Callee: &ast.IdentifierNode{Value: "event_count"}, Arguments: args}); ok {
				return func(r int) bool { return f(r) > 0 }, true
			}
		case "consented":
			if s, ok := args[0].(*ast.StringNode); ok {
				b := p.t.consent[s.Value]
				if b == nil {
					return constPred(false), true
				}
				bits := *b
				return func(r int) bool { return bits.get(r) }, true
			}
		case "in_segment":
			if s, ok := args[0].(*ast.StringNode); ok {
				if b, ok := p.segs[s.Value]; ok {
					bits := *b
					return func(r int) bool { return bits.get(r) }, true
				}
			}
		}
	}
	return nil, false
}

func callName(n *ast.CallNode) string {
	if id, ok := n.Callee.(*ast.IdentifierNode); ok {
		return id.Value
	}
	return ""
}

// literal returns the value of a literal node; arrays of literals become
// []any.
func literal(n ast.Node) (any, bool) {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return n.Value, true
	case *ast.FloatNode:
		return n.Value, true
	case *ast.StringNode:
		return n.Value, true
	case *ast.BoolNode:
		return n.Value, true
	case *ast.NilNode:
		return nil, true
	case *ast.UnaryNode:
		if n.Operator == "-" {
			switch v, _ := literal(n.Node); v := v.(type) {
			case int:
				return -v, true
			case float64:
				return -v, true
			}
		}
	case *ast.ArrayNode:
		arr := make([]any, len(n.Nodes))
		for i, e := range n.Nodes {
			v, ok := literal(e)
			if !ok {
				return nil, false
			}
			if _, nested := v.([]any); nested {
				return nil, false
			}
			arr[i] = v
		}
		return arr, true
	}
	return nil, false
}

var flipOp = map[string]string{"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}

// traitSource recognises traits.x, traits["x"] and trait("x").
func (p *planner) traitSource(n ast.Node) (*traitCol, bool) {
	switch n := n.(type) {
	case *ast.MemberNode:
		if id, ok := n.Node.(*ast.IdentifierNode); ok && id.Value == "traits" && !n.Optional {
			if s, ok := n.Property.(*ast.StringNode); ok {
				return p.t.traits[s.Value], true
			}
		}
	case *ast.CallNode:
		if callName(n) == "trait" {
			if s, ok := n.Arguments[0].(*ast.StringNode); ok {
				return p.t.traits[s.Value], true
			}
		}
	}
	return nil, false
}

// compare plans `left op right` where one side is a column and the other a
// literal.
func (p *planner) compare(op string, left, right ast.Node) (pred, bool) {
	lit, ok := literal(right)
	value := left
	if !ok {
		flipped, canFlip := flipOp[op]
		if !canFlip {
			return nil, false
		}
		if lit, ok = literal(left); !ok {
			return nil, false
		}
		op, value = flipped, right
	}
	if _, isArr := lit.([]any); isArr != (op == "in") {
		return nil, false
	}
	if c, ok := p.traitSource(value); ok {
		return p.traitPred(c, op, lit), true
	}
	if id, ok := value.(*ast.IdentifierNode); ok && id.Value == "id" {
		return p.idPred(op, lit)
	}
	if f, ok := p.numeric(value); ok {
		x, isNum := toFloat(lit)
		if !isNum {
			return nil, false
		}
		switch op {
		case "==":
			return func(r int) bool { return f(r) == x }, true
		case "!=":
			return func(r int) bool { return f(r) != x }, true
		case "<":
			return func(r int) bool { return f(r) < x }, true
		case "<=":
			return func(r int) bool { return f(r) <= x }, true
		case ">":
			return func(r int) bool { return f(r) > x }, true
		case ">=":
			return func(r int) bool { return f(r) >= x }, true
		}
	}
	return nil, false
}

func toFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case int:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// applyOp is the reference semantics of `v op lit` for one value, shared
// with the VM helpers (runtime.Equal, compareAny, stringOp, inArray).
func applyOp(op string, v, lit any) bool {
	switch op {
	case "==":
		return runtime.Equal(v, lit)
	case "!=":
		return !runtime.Equal(v, lit)
	case "<", "<=", ">", ">=":
		return compareAny(op, v, lit)
	case "in":
		return inArray(v, lit.([]any))
	default:
		ok, _ := stringOp(op, v, lit)
		return ok
	}
}

// traitPred plans `trait op lit` over one trait column (nil: the key is in
// no row).
func (p *planner) traitPred(c *traitCol, op string, lit any) pred {
	absent := applyOp(op, nil, lit)
	if c == nil {
		return constPred(absent)
	}
	present := c.present
	switch c.kind {
	case kindString:
		table := make([]bool, c.dict.len())
		any := false
		for code := range table {
			table[code] = applyOp(op, c.dict.at(code), lit)
			any = any || table[code]
		}
		codes := c.codes
		if !any {
			return func(r int) bool { return !present.get(r) && absent }
		}
		return func(r int) bool {
			if present.get(r) {
				return table[codes[r]]
			}
			return absent
		}
	case kindFloat, kindInt:
		if f, ok := p.numericTrait(c, op, lit); ok {
			return func(r int) bool {
				if present.get(r) {
					return f(r)
				}
				return absent
			}
		}
		var rep any = 0.0
		if c.kind == kindInt {
			rep = int64(0)
		}
		return presentConst(present, applyOp(op, rep, lit), absent)
	case kindBool:
		vals := c.b
		switch op {
		case "==", "!=", "in":
			t, f := applyOp(op, true, lit), applyOp(op, false, lit)
			return func(r int) bool {
				if present.get(r) {
					if vals.get(r) {
						return t
					}
					return f
				}
				return absent
			}
		}
		return presentConst(present, applyOp(op, false, lit), absent)
	default: // kindAny
		a := c.a
		return func(r int) bool {
			if r < len(a) && a[r] != nil {
				return applyOp(op, a[r], lit)
			}
			return absent
		}
	}
}

func presentConst(present bitmap, whenPresent, absent bool) pred {
	return func(r int) bool {
		if present.get(r) {
			return whenPresent
		}
		return absent
	}
}

// numericTrait plans a numeric column against numeric literals with expr's
// rules: int against int compares as integers, anything else as float64.
func (p *planner) numericTrait(c *traitCol, op string, lit any) (pred, bool) {
	if op == "in" {
		var fs []float64
		var is []int64
		for _, e := range lit.([]any) {
			switch e := e.(type) {
			case int:
				is = append(is, int64(e))
			case float64:
				fs = append(fs, e)
			}
		}
		if c.kind == kindInt {
			vals := c.i
			return func(r int) bool {
				x := vals[r]
				for _, y := range is {
					if x == y {
						return true
					}
				}
				for _, y := range fs {
					if float64(x) == y {
						return true
					}
				}
				return false
			}, true
		}
		for _, y := range is {
			fs = append(fs, float64(y))
		}
		vals := c.f
		return func(r int) bool {
			for _, y := range fs {
				if vals[r] == y {
					return true
				}
			}
			return false
		}, true
	}
	if li, ok := lit.(int); ok && c.kind == kindInt {
		vals, y := c.i, int64(li)
		return intCmp(op, vals, y)
	}
	y, ok := toFloat(lit)
	if !ok {
		return nil, false
	}
	if c.kind == kindInt {
		vals := c.i
		return floatCmp(op, func(r int) float64 { return float64(vals[r]) }, y)
	}
	vals := c.f
	switch op {
	case "==":
		return func(r int) bool { return vals[r] == y }, true
	case ">":
		return func(r int) bool { return vals[r] > y }, true
	case ">=":
		return func(r int) bool { return vals[r] >= y }, true
	case "<":
		return func(r int) bool { return vals[r] < y }, true
	}
	return floatCmp(op, func(r int) float64 { return vals[r] }, y)
}

func intCmp(op string, vals []int64, y int64) (pred, bool) {
	switch op {
	case "==":
		return func(r int) bool { return vals[r] == y }, true
	case "!=":
		return func(r int) bool { return vals[r] != y }, true
	case "<":
		return func(r int) bool { return vals[r] < y }, true
	case "<=":
		return func(r int) bool { return vals[r] <= y }, true
	case ">":
		return func(r int) bool { return vals[r] > y }, true
	case ">=":
		return func(r int) bool { return vals[r] >= y }, true
	}
	return nil, false
}

func floatCmp(op string, f func(int) float64, y float64) (pred, bool) {
	switch op {
	case "==":
		return func(r int) bool { return f(r) == y }, true
	case "!=":
		return func(r int) bool { return f(r) != y }, true
	case "<":
		return func(r int) bool { return f(r) < y }, true
	case "<=":
		return func(r int) bool { return f(r) <= y }, true
	case ">":
		return func(r int) bool { return f(r) > y }, true
	case ">=":
		return func(r int) bool { return f(r) >= y }, true
	}
	return nil, false
}

// idPred plans `id op lit` for string literals.
func (p *planner) idPred(op string, lit any) (pred, bool) {
	ids := p.t.ids
	if op == "in" {
		set := map[string]bool{}
		for _, e := range lit.([]any) {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			set[s] = true
		}
		return func(r int) bool { return set[ids[r]] }, true
	}
	y, ok := lit.(string)
	if !ok {
		return nil, false
	}
	switch op {
	case "==":
		return func(r int) bool { return ids[r] == y }, true
	case "!=":
		return func(r int) bool { return ids[r] != y }, true
	case "<":
		return func(r int) bool { return ids[r] < y }, true
	case "<=":
		return func(r int) bool { return ids[r] <= y }, true
	case ">":
		return func(r int) bool { return ids[r] > y }, true
	case ">=":
		return func(r int) bool { return ids[r] >= y }, true
	case "startsWith":
		return func(r int) bool { return strings.HasPrefix(ids[r], y) }, true
	case "endsWith":
		return func(r int) bool { return strings.HasSuffix(ids[r], y) }, true
	case "contains":
		return func(r int) bool { return strings.Contains(ids[r], y) }, true
	case "matches":
		re, err := compiledRegexp(y)
		if err != nil {
			return nil, false
		}
		return func(r int) bool { return re.MatchString(ids[r]) }, true
	}
	return nil, false
}

// window returns the cutoffs for an optional literal window argument.
func (p *planner) window(args []ast.Node, i int) (has bool, cutoffNs, cutoffSec int64, ok bool) {
	if len(args) <= i {
		return false, 0, 0, true
	}
	s, isStr := args[i].(*ast.StringNode)
	if !isStr {
		return false, 0, 0, false
	}
	d, err := ParseWindow(s.Value)
	if err != nil {
		return false, 0, 0, false
	}
	cn, cs := cutoffs(p.nowNs, d)
	return true, cn, cs, true
}

// numeric plans the number-valued row functions: event_count, sum and
// days_since of first_seen, last_seen or last_event.
func (p *planner) numeric(n ast.Node) (func(int) float64, bool) {
	call, ok := n.(*ast.CallNode)
	if !ok {
		return nil, false
	}
	args := call.Arguments
	switch callName(call) {
	case "event_count":
		s, ok := args[0].(*ast.StringNode)
		if !ok {
			return nil, false
		}
		has, cn, cs, ok := p.window(args, 1)
		if !ok {
			return nil, false
		}
		e := p.t.events[s.Value]
		if e == nil {
			return func(int) float64 { return 0 }, true
		}
		if !has {
			if len(e.wide) > 0 { // counts[d] would be the wideCount marker
				return func(r int) float64 { return float64(e.cnt(r)) }, true
			}
			rows, cum, counts := e.has, e.cum, e.count
			return func(r int) float64 {
				if d, ok := rank(rows, cum, r); ok {
					return float64(counts[d])
				}
				return 0
			}, true
		}
		return func(r int) float64 { return float64(e.windowCount(r, cn, cs)) }, true
	case "sum":
		ev, ok1 := args[0].(*ast.StringNode)
		prop, ok2 := args[1].(*ast.StringNode)
		if !ok1 || !ok2 {
			return nil, false
		}
		has, cn, cs, ok := p.window(args, 2)
		if !ok {
			return nil, false
		}
		e := p.t.events[ev.Value]
		if e == nil {
			return func(int) float64 { return 0 }, true
		}
		pi, ok := e.propIdx[prop.Value]
		if !ok {
			return func(int) float64 { return 0 }, true
		}
		if !has {
			rows, cum, sums, counts := e.has, e.cum, e.sums[pi], e.count
			return func(r int) float64 {
				if d, ok := rank(rows, cum, r); ok && d < len(sums) && counts[d] != 0 {
					return sums[d]
				}
				return 0
			}, true
		}
		return func(r int) float64 { return e.sum(r, pi, true, cn, cs) }, true
	case "days_since":
		now := p.nowNs
		switch a := args[0].(type) {
		case *ast.IdentifierNode:
			var col []int64
			switch a.Value {
			case "first_seen":
				col = p.t.firstSeen
			case "last_seen":
				col = p.t.lastSeen
			default:
				return nil, false
			}
			return func(r int) float64 { return daysSince(now, col[r]) }, true
		case *ast.CallNode:
			if callName(a) != "last_event" {
				return nil, false
			}
			s, ok := a.Arguments[0].(*ast.StringNode)
			if !ok {
				return nil, false
			}
			e := p.t.events[s.Value]
			if e == nil {
				return func(int) float64 { return daysSince(now, zeroNs) }, true
			}
			return func(r int) float64 { return daysSince(now, e.lastNs(r)) }, true
		}
	}
	return nil, false
}

func (p *planner) describe() string {
	if len(p.leaves) == 0 {
		return "columnar"
	}
	return fmt.Sprintf("columnar+vm: %s", strings.Join(p.leaves, "; "))
}
