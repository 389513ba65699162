package rules

// Kind says whether a catalogue entry is a field or a function.
type Kind string

// Catalogue entry kinds.
const (
	KindField    Kind = "field"
	KindFunction Kind = "function"
)

// Entry describes one name a rule can use, for autocomplete and
// `loupe rules help`.
type Entry struct {
	Name      string
	Kind      Kind
	Signature string
	Doc       string // one line
	Example   string
}

var catalogue = []Entry{
	{"id", KindField, "id string", "The profile's canonical ID.", `id in ["p1", "p2"]`},
	{"traits", KindField, "traits map[string]any", "Current trait values; a missing trait is nil.", `traits.plan == "pro"`},
	{"identities", KindField, "identities map[string][]string", "Identifier values by type (email, user_id, phone, ...).", `len(identities.email) > 0`},
	{"first_seen", KindField, "first_seen time", "When the profile was first seen.", `days_since(first_seen) < 7`},
	{"last_seen", KindField, "last_seen time", "When the profile was last seen.", `days_since(last_seen) > 90`},
	{"trait", KindFunction, "trait(name string) any", "The trait called name, nil if missing (for names that are not identifiers).", `trait("Favourite Colour") == "red"`},
	{"event_count", KindFunction, "event_count(event string[, within string]) int", "How many times the event happened, all time or within a window like \"30d\".", `event_count("Order Completed", "30d") >= 2`},
	{"has_event", KindFunction, "has_event(event string[, within string]) bool", "Whether the event happened, all time or within a window.", `has_event("Signed Up", "7d")`},
	{"last_event", KindFunction, "last_event(event string) time", "When the event last happened; the zero time if never.", `days_since(last_event("Order Completed")) > 60`},
	{"sum", KindFunction, "sum(event string, property string[, within string]) float", "Sum of a numeric event property, all time or within a window.", `sum("Order Completed", "revenue") >= 100`},
	{"days_since", KindFunction, "days_since(t time) float", "Days (fractional) from t to now(); +Inf for the zero time.", `days_since(last_seen) <= 30`},
	{"consented", KindFunction, "consented(purpose string) bool", "Whether consent currently allows the purpose.", `consented("email_marketing")`},
	{"in_segment", KindFunction, "in_segment(name string) bool", "Whether the profile matches another segment's rule.", `in_segment("High Value") && !in_segment("Churned")`},
	{"now", KindFunction, "now() time", "The evaluation time, fixed for one run.", `last_seen > now() - duration("48h")`},
}

// Catalogue returns the fields and functions of the rule language, in a
// stable order. expr's own builtins (len, lower, upper, all, any, filter,
// map, date, duration, ...) are also available but not listed here.
func Catalogue() []Entry {
	return append([]Entry(nil), catalogue...)
}

// catalogueNames returns the names suggestions are drawn from.
func catalogueNames() []string {
	names := make([]string, 0, len(catalogue)+32)
	for _, e := range catalogue {
		names = append(names, e.Name)
	}
	return append(names, "len", "lower", "upper", "trim", "all", "any", "none", "one", "filter", "map",
		"count", "find", "date", "duration", "abs", "int", "float", "string", "keys", "values",
		"split", "join", "first", "last", "max", "min", "mean", "median", "round", "floor", "ceil")
}
