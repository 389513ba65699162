package rules

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// Default safety limits (see CompileOptions).
const (
	DefaultMaxSource         = 8 << 10
	DefaultMaxNodes          = 500
	DefaultMaxPredicateDepth = 2
	DefaultMaxRange          = 10_000
	maxRepeat                = 1_000
)

// CompileOptions tunes Compile. The zero value uses the defaults.
type CompileOptions struct {
	// Name is the segment this rule defines, if any; Eval uses it to report
	// in_segment cycles that come back to this rule.
	Name string
	// MaxSource bounds the source length in bytes (default 8 KiB).
	MaxSource int
	// MaxNodes bounds the AST size (default 500 nodes).
	MaxNodes int
	// MaxPredicateDepth bounds the nesting of closure builtins such as
	// all/any/filter/map (default 2: a third level is refused).
	MaxPredicateDepth int
	// MaxRange bounds the length of a range literal like 1..100 (default 10,000).
	MaxRange int
}

func (o CompileOptions) withDefaults() CompileOptions {
	if o.MaxSource <= 0 {
		o.MaxSource = DefaultMaxSource
	}
	if o.MaxNodes <= 0 {
		o.MaxNodes = DefaultMaxNodes
	}
	if o.MaxPredicateDepth <= 0 {
		o.MaxPredicateDepth = DefaultMaxPredicateDepth
	}
	if o.MaxRange <= 0 {
		o.MaxRange = DefaultMaxRange
	}
	return o
}

// Rule is a compiled, type-checked rule. It is immutable and safe for
// concurrent use.
type Rule struct {
	src       string
	opts      CompileOptions
	tree      ast.Node // checked, with the nil-semantics rewrites applied
	segments  []string // in_segment names, in order of appearance
	allTraits bool     // the rule uses traits beyond literal keys
	traitKeys []string // literal trait keys the rule reads
	needIdent bool
}

// Source returns the rule's source text.
func (r *Rule) Source() string { return r.src }

// Name returns CompileOptions.Name.
func (r *Rule) Name() string { return r.opts.Name }

// Segments returns the segment names the rule references with in_segment.
func (r *Rule) Segments() []string { return append([]string(nil), r.segments...) }

// String returns the rule as the evaluator sees it, after the rewrites that
// give missing traits their semantics (comparisons through __lt and friends).
func (r *Rule) String() string { return r.tree.String() }

// Compile parses and type-checks src. Errors are *Error with the position of
// the problem and, for unknown names, a suggestion.
func Compile(src string, opts CompileOptions) (*Rule, error) {
	opts = opts.withDefaults()
	if len(src) > opts.MaxSource {
		return nil, &Error{Line: 1, Message: fmt.Sprintf("rule is too long (%d bytes, the limit is %d)", len(src), opts.MaxSource)}
	}
	if strings.TrimSpace(src) == "" {
		return nil, &Error{Line: 1, Message: "empty rule"}
	}
	tree, err := frontEnd(src, opts, nil, false)
	if err != nil {
		return nil, err
	}
	r := &Rule{src: src, opts: opts, tree: tree.Node}
	r.collect()
	return r, nil
}

// envTemplate gives the checker the types of the rule's fields.
var envTemplate = map[string]any{
	"id":         "",
	"traits":     map[string]any{},
	"identities": map[string][]string{},
	"first_seen": time.Time{},
	"last_seen":  time.Time{},
}

var fieldNames = map[string]bool{"id": true, "traits": true, "identities": true, "first_seen": true, "last_seen": true}

// newConfig builds the expr configuration; the functions are bound to cur
// (nil: type checking only).
func newConfig(opts CompileOptions, cur *cursor) *conf.Config {
	if cur == nil {
		cur = &cursor{}
	}
	c := conf.CreateNew()
	options := []expr.Option{
		expr.Env(envTemplate),
		expr.MaxNodes(uint(opts.MaxNodes) * 4), // our own check is tighter; this leaves room for rewrites
		expr.Function("trait", cur.trait, new(func(string) any)),
		expr.Function("event_count", cur.eventCount, new(func(string) int), new(func(string, string) int)),
		expr.Function("has_event", cur.hasEvent, new(func(string) bool), new(func(string, string) bool)),
		expr.Function("last_event", cur.lastEvent, new(func(string) time.Time)),
		expr.Function("sum", cur.sum, new(func(string, string) float64), new(func(string, string, string) float64)),
		expr.Function("days_since", cur.daysSince, new(func(time.Time) float64)),
		expr.Function("consented", cur.consented, new(func(string) bool)),
		expr.Function("in_segment", cur.inSegment, new(func(string) bool)),
		expr.Function("now", cur.nowFn, new(func() time.Time)),
		expr.Function("__truthy", truthyFn, new(func(any) bool)),
		expr.Function("__in", inFn, new(func(any, []any) bool)),
	}
	for op := range cmpOps {
		options = append(options, expr.Function(cmpOps[op], cmpFn(op), new(func(any, any) bool)))
	}
	for op, name := range strOps {
		options = append(options, expr.Function(name, strFn(op), new(func(any, any) bool)))
	}
	for _, o := range options {
		o(c)
	}
	for name := range c.Disabled {
		delete(c.Builtins, name)
	}
	return c
}

// frontEnd parses, validates, checks and rewrites src. internal marks
// sources produced by the planner (already rewritten, may use __ helpers).
func frontEnd(src string, opts CompileOptions, cur *cursor, internal bool) (*parser.Tree, error) {
	cfg := newConfig(opts, cur)
	tree, err := parser.ParseWithConfig(src, cfg)
	if err != nil {
		return nil, convertErr(src, err)
	}
	if !internal {
		if err := validate(src, tree.Node, opts); err != nil {
			return nil, err
		}
	}
	typ, err := checker.Check(tree, cfg)
	if err != nil {
		return nil, convertErr(src, err)
	}
	if !internal {
		if typ.Kind() != reflect.Bool && typ.Kind() != reflect.Interface {
			return nil, newError(src, 0, fmt.Sprintf("a rule must be a condition (bool), this one is %s", typ))
		}
		if err := validateTyped(src, tree.Node); err != nil {
			return nil, err
		}
	}
	rewrite(&tree.Node)
	if _, err := checker.Check(tree, cfg); err != nil {
		return nil, convertErr(src, err)
	}
	return tree, nil
}

// program compiles src into a VM program whose functions read cur.
func program(src string, opts CompileOptions, cur *cursor, internal bool) (*vm.Program, error) {
	tree, err := frontEnd(src, opts, cur, internal)
	if err != nil {
		return nil, err
	}
	cfg := newConfig(opts, cur)
	if err := optimizer.Optimize(&tree.Node, cfg); err != nil {
		return nil, err
	}
	return compiler.Compile(tree, cfg)
}

// convertErr turns expr's errors into *Error with a suggestion.
func convertErr(src string, err error) error {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return &Error{Line: 1, Message: err.Error()}
	}
	e := newError(src, fe.From, fe.Message)
	if name, ok := strings.CutPrefix(fe.Message, "unknown name "); ok {
		e.Suggestion = suggest(name, catalogueNames())
	}
	return e
}

// children returns n's direct children.
func children(n ast.Node) []ast.Node {
	switch n := n.(type) {
	case *ast.UnaryNode:
		return []ast.Node{n.Node}
	case *ast.BinaryNode:
		return []ast.Node{n.Left, n.Right}
	case *ast.ChainNode:
		return []ast.Node{n.Node}
	case *ast.MemberNode:
		return []ast.Node{n.Node, n.Property}
	case *ast.SliceNode:
		var out []ast.Node
		for _, c := range []ast.Node{n.Node, n.From, n.To} {
			if c != nil {
				out = append(out, c)
			}
		}
		return out
	case *ast.CallNode:
		return append([]ast.Node{n.Callee}, n.Arguments...)
	case *ast.BuiltinNode:
		return n.Arguments
	case *ast.PredicateNode:
		return []ast.Node{n.Node}
	case *ast.VariableDeclaratorNode:
		return []ast.Node{n.Value, n.Expr}
	case *ast.SequenceNode:
		return n.Nodes
	case *ast.ConditionalNode:
		return []ast.Node{n.Cond, n.Exp1, n.Exp2}
	case *ast.ArrayNode:
		return n.Nodes
	case *ast.MapNode:
		return n.Pairs
	case *ast.PairNode:
		return []ast.Node{n.Key, n.Value}
	}
	return nil
}

func errAt(src string, n ast.Node, format string, args ...any) *Error {
	return newError(src, n.Location().From, fmt.Sprintf(format, args...))
}

// intLit returns the value of an integer literal, possibly negated.
func intLit(n ast.Node) (int, bool) {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return n.Value, true
	case *ast.UnaryNode:
		if n.Operator == "-" {
			if v, ok := intLit(n.Node); ok {
				return -v, true
			}
		}
	}
	return 0, false
}

// validate applies the safety limits to the parsed tree.
func validate(src string, root ast.Node, opts CompileOptions) error {
	nodes := 0
	var visit func(n ast.Node, depth, preds int) error
	visit = func(n ast.Node, depth, preds int) error {
		nodes++
		if nodes > opts.MaxNodes {
			return errAt(src, n, "rule is too complex (more than %d nodes)", opts.MaxNodes)
		}
		if depth > 128 {
			return errAt(src, n, "rule is nested too deeply")
		}
		switch n := n.(type) {
		case *ast.IdentifierNode:
			if strings.HasPrefix(n.Value, "__") {
				return errAt(src, n, "unknown name %s", n.Value)
			}
		case *ast.CallNode:
			if id, ok := n.Callee.(*ast.IdentifierNode); ok && strings.HasPrefix(id.Value, "__") {
				return errAt(src, n, "unknown name %s", id.Value)
			}
		case *ast.BuiltinNode:
			for _, a := range n.Arguments {
				if _, ok := a.(*ast.PredicateNode); ok {
					preds++
					if preds > opts.MaxPredicateDepth {
						return errAt(src, n, "%s nested %d deep: at most %d levels of predicates (all/any/filter/map/...) are allowed", n.Name, preds, opts.MaxPredicateDepth)
					}
					break
				}
			}
			if n.Name == "repeat" && len(n.Arguments) == 2 {
				if v, ok := intLit(n.Arguments[1]); !ok || v > maxRepeat {
					return errAt(src, n, "repeat needs a literal count of at most %d", maxRepeat)
				}
			}
		case *ast.BinaryNode:
			if n.Operator == ".." {
				from, ok1 := intLit(n.Left)
				to, ok2 := intLit(n.Right)
				if !ok1 || !ok2 {
					return errAt(src, n, "range bounds must be integer literals")
				}
				if to-from > opts.MaxRange {
					return errAt(src, n, "range %d..%d is too large (at most %d elements)", from, to, opts.MaxRange)
				}
			}
		}
		for _, c := range children(n) {
			if err := visit(c, depth+1, preds); err != nil {
				return err
			}
		}
		return nil
	}
	return visit(root, 0, 0)
}

// windowArg maps window-taking functions to the index of their window
// argument.
var windowArg = map[string]int{"event_count": 1, "has_event": 1, "sum": 2}

// validateTyped checks literal arguments: window durations and segment names.
func validateTyped(src string, root ast.Node) error {
	var visit func(n ast.Node) error
	visit = func(n ast.Node) error {
		if call, ok := n.(*ast.CallNode); ok {
			if id, ok := call.Callee.(*ast.IdentifierNode); ok {
				if i, ok := windowArg[id.Value]; ok && len(call.Arguments) > i {
					s, ok := call.Arguments[i].(*ast.StringNode)
					if !ok {
						return errAt(src, call.Arguments[i], "the window of %s must be a string literal like \"30d\"", id.Value)
					}
					if _, err := ParseWindow(s.Value); err != nil {
						return errAt(src, s, "%s", strings.TrimPrefix(err.Error(), "rules: "))
					}
				}
				if id.Value == "in_segment" {
					if _, ok := call.Arguments[0].(*ast.StringNode); !ok {
						return errAt(src, call.Arguments[0], "in_segment needs a segment name literal")
					}
				}
			}
		}
		if b, ok := n.(*ast.BinaryNode); ok && b.Operator == "matches" {
			if s, ok := b.Right.(*ast.StringNode); ok {
				if _, err := regexp.Compile(s.Value); err != nil {
					return errAt(src, s, "bad regular expression: %v", err)
				}
			}
		}
		for _, c := range children(n) {
			if err := visit(c); err != nil {
				return err
			}
		}
		return nil
	}
	return visit(root)
}

// collect records what the rule reads, so the VM environment can be built
// with only those parts.
func (r *Rule) collect() {
	keys := map[string]bool{}
	var visit func(n ast.Node)
	visit = func(n ast.Node) {
		switch n := n.(type) {
		case *ast.MemberNode:
			if id, ok := n.Node.(*ast.IdentifierNode); ok && id.Value == "traits" {
				if s, ok := n.Property.(*ast.StringNode); ok {
					keys[s.Value] = true
					return
				}
			}
		case *ast.IdentifierNode:
			switch n.Value {
			case "traits":
				r.allTraits = true
			case "identities":
				r.needIdent = true
			}
		case *ast.CallNode:
			if id, ok := n.Callee.(*ast.IdentifierNode); ok {
				switch id.Value {
				case "trait":
					if s, ok := n.Arguments[0].(*ast.StringNode); ok {
						keys[s.Value] = true
					} else {
						r.allTraits = true
					}
				case "in_segment":
					name := n.Arguments[0].(*ast.StringNode).Value
					found := false
					for _, s := range r.segments {
						found = found || s == name
					}
					if !found {
						r.segments = append(r.segments, name)
					}
				}
			}
		}
		for _, c := range children(n) {
			visit(c)
		}
	}
	visit(r.tree)
	r.traitKeys = sortedKeys(keys)
}

var (
	boolType = reflect.TypeOf(true)
	// cmpOps maps comparison operators to the helpers that give them
	// nil-safe semantics.
	cmpOps = map[string]string{"<": "__lt", "<=": "__le", ">": "__gt", ">=": "__ge"}
	strOps = map[string]string{"startsWith": "__startsWith", "endsWith": "__endsWith", "contains": "__contains", "matches": "__matches"}
)

func isIface(n ast.Node) bool { return n.Type().Kind() == reflect.Interface }

func helperCall(name string, args ...ast.Node) *ast.CallNode {
	c := &ast.CallNode{Callee: &ast.IdentifierNode{Value: name}, Arguments: args}
	c.SetType(boolType)
	return c
}

func truthy(n *ast.Node) {
	if isIface(*n) {
		loc := (*n).Location()
		c := helperCall("__truthy", *n)
		c.SetLocation(loc)
		*n = c
	}
}

// rewriter gives untyped (trait) operands their documented semantics: a
// comparison or string operator with nil or a value of another type is
// false, and a non-bool value used as a condition is false.
type rewriter struct{}

func (rewriter) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		switch {
		case cmpOps[n.Operator] != "" && (isIface(n.Left) || isIface(n.Right)):
			ast.Patch(node, helperCall(cmpOps[n.Operator], n.Left, n.Right))
		case strOps[n.Operator] != "" && (isIface(n.Left) || isIface(n.Right)):
			ast.Patch(node, helperCall(strOps[n.Operator], n.Left, n.Right))
		case n.Operator == "in" && isIface(n.Left):
			if _, ok := n.Right.(*ast.ArrayNode); ok {
				ast.Patch(node, helperCall("__in", n.Left, n.Right))
			}
		case n.Operator == "&&" || n.Operator == "and" || n.Operator == "||" || n.Operator == "or":
			truthy(&n.Left)
			truthy(&n.Right)
		}
	case *ast.UnaryNode:
		if n.Operator == "!" || n.Operator == "not" {
			truthy(&n.Node)
		}
	case *ast.ConditionalNode:
		truthy(&n.Cond)
	case *ast.BuiltinNode:
		switch n.Name {
		case "all", "any", "none", "one", "filter", "find", "findIndex", "findLast", "findLastIndex", "count":
			if len(n.Arguments) == 2 {
				if p, ok := n.Arguments[1].(*ast.PredicateNode); ok {
					truthy(&p.Node)
				}
			}
		}
	}
}

func rewrite(root *ast.Node) {
	ast.Walk(root, rewriter{})
	truthy(root)
}
