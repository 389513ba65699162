// Package rules is Loupe's segment rule language and its evaluator.
//
// # The language
//
// A rule is an expr-lang (github.com/expr-lang/expr) expression over one
// unified profile that must produce a boolean. It is type-checked when it is
// compiled (Compile); errors are *Error values with a 1-based line, a 0-based
// column, the source line for Caret, and "did you mean" suggestions for
// unknown names. Fields and functions (see Catalogue for the full list with
// examples):
//
//	id                                string
//	traits                            map[string]any; traits.plan, traits["Plan Name"]
//	identities                        map[string][]string; identities.email
//	first_seen, last_seen             time
//	trait(name)                       any; same as traits[name]
//	event_count(event[, within])      int
//	has_event(event[, within])        bool
//	last_event(event)                 time; the zero time if the event never happened
//	sum(event, property[, within])    float; sum of a numeric event property
//	days_since(t)                     float days from t to now(); +Inf for the zero time
//	consented(purpose)                bool
//	in_segment(name)                  bool; another segment's rule (EvalOptions.Segments)
//	now()                             time; fixed for one run (EvalOptions.Now)
//
// plus expr's builtins (len, lower, all, any, filter, map, date, duration,
// ...). expr's array sum(array) is replaced by the event sum above, and
// now() is the injected evaluation time, not the wall clock.
//
// # Missing traits and nil
//
// A trait that is missing, or set to null, is nil. The rule language makes
// nil quiet rather than an error:
//
//   - == and != follow expr: traits.plan == "pro" is false for a missing
//     plan, traits.plan != "pro" is true, traits.plan == nil is true.
//   - <, <=, >, >= are false when either side is nil or when the two values
//     cannot be compared (a string and a number): traits.age > 30 and
//     traits.age <= 30 are both false for a missing age.
//   - startsWith, endsWith, contains and matches are false unless both sides
//     are strings.
//   - x in [a, b] is true when x == a or x == b (so nil in [nil] is true).
//   - A trait used as a condition (traits.vip, !traits.vip, a && b) counts
//     as true only when it is the boolean true.
//
// The compiler implements this by rewriting operators whose operand types
// are unknown at compile time into calls of internal helpers (__lt, __ge,
// __startsWith, __in, __truthy, ...); Rule.String shows the rewritten rule.
// Arithmetic and conversions on nil are still runtime errors
// (traits.age + 1, int(traits.code) on "x"): the profile does not match and
// the error is reported as a RowError; the run goes on.
//
// # Windows
//
// within is a string literal: a positive whole number and a unit, m
// (minutes), h (hours), d (24-hour days) or w (weeks): "90m", "12h", "30d",
// "2w". A bad literal is a compile error at its position. An event is inside
// the window when its time is strictly after now() - within. Windows are
// computed from EventStats.Recent (the retained occurrences, stored per row in
// CSR layout) and are exact when every occurrence is retained, or when the
// window starts before the event's First time (then the all-time Count and
// Sums are used). When older occurrences were dropped by the engine and the
// window starts between First and the oldest retained occurrence, the result
// counts only the retained ones (a lower bound).
//
// # Evaluation and the planner
//
// Rules run over a Table, a columnar snapshot of the profiles (see Table for
// the layout and the locking contract). Rule.Eval splits the rows into
// chunks of 16,384 that workers take in order (so the first matches are
// known early and OnSample can stream them), skips deleted and suppressed
// rows a 64-bit word at a time, and checks ctx between chunks.
//
// A planner walks the checked expr AST and turns the common shapes into Go
// predicates over typed columns: and/or/not; ==, !=, <, <=, >, >=, in,
// startsWith/endsWith/contains/matches between a trait (traits.x,
// traits["x"], trait("x")) or id and literals; event_count, sum and
// days_since(first_seen | last_seen | last_event(e)) compared with numbers;
// has_event, consented and in_segment. String traits are compared once per
// dictionary entry, so any operator costs one table lookup per row. Every
// other subtree becomes a VM leaf: it is printed back to expr source,
// compiled once per worker and run on that worker's vm.VM with an environment
// rebuilt from the columns, so `traits.plan == "pro" && any(...)` only runs
// the VM for pro profiles. A rule with no plannable shape at the top runs
// wholly on the VM (Result.Plan says which). A differential test checks that
// planned and VM evaluation agree row for row, errors included.
//
// # Safety
//
// Compile bounds the source size, the AST size (its own count and
// expr.MaxNodes), the nesting depth, the nesting of predicate builtins (a
// third level of all/any/filter/map/... is refused), range literals (literal
// bounds, at most 10,000 elements) and repeat. expr's VM cannot be
// interrupted inside one row, so cancellation is checked between chunks.
package rules
