// Package identity holds Loupe's identity-resolution rules: how identifiers
// are normalised, which values are blocked, and how an event's identifiers
// decide which profiles merge.
//
// The merge decision follows the approach Segment Unify documents: when the
// profiles an event's identifiers point at would, merged, break a
// per-profile limit (two user_ids, six emails), the event's identifiers of
// lowest priority are dropped one at a time until no limit is broken, and
// the event attaches to what is left. The decision is a pure function of the
// event's identifiers and the current owners of those identifiers, so it can
// be tested and benchmarked without a store.
package identity

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Built-in identifier types.
const (
	UserID      = "user_id"
	AnonymousID = "anonymous_id"
	Email       = "email"
	Phone       = "phone"
	DeviceID    = "device_id"
)

// ID is one identifier: a type and a normalised value.
type ID struct {
	Type  string
	Value string
}

// String renders "type:value", the form REFs use.
func (id ID) String() string { return id.Type + ":" + id.Value }

// Parse splits "type:value" and normalises the value for its type.
func Parse(s string) (ID, error) {
	typ, val, ok := strings.Cut(s, ":")
	if !ok || typ == "" || val == "" {
		return ID{}, fmt.Errorf("identifier %q: want TYPE:VALUE", s)
	}
	return ID{Type: typ, Value: Normalize(typ, val)}, nil
}

// Normalize returns the canonical form of an identifier value: emails
// trimmed and lower-cased, phones reduced to '+' and digits, everything
// else trimmed.
func Normalize(typ, value string) string {
	switch typ {
	case Email:
		return strings.ToLower(strings.TrimSpace(value))
	case Phone:
		return NormalizePhone(value)
	default:
		return strings.TrimSpace(value)
	}
}

// NormalizePhone keeps a leading '+' and the digits. A number written
// without '+' keeps its digits as they are: Loupe does not guess a country.
func NormalizePhone(s string) string {
	s = strings.TrimSpace(s)
	b := make([]byte, 0, len(s))
	if strings.HasPrefix(s, "+") {
		b = append(b, '+')
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			b = append(b, c)
		}
	}
	if len(b) == 0 || (len(b) == 1 && b[0] == '+') {
		return ""
	}
	return string(b)
}

// TypeRule is the resolution rule of one identifier type.
type TypeRule struct {
	Type     string `yaml:"type"`
	Priority int    `yaml:"priority"` // 1 is the highest
	Limit    int    `yaml:"limit"`    // max per profile; 0 means no limit
}

// Rules are the identity-resolution rules.
type Rules struct {
	Types []TypeRule `yaml:"types"`
	// Blocked values, compared case-insensitively after normalisation.
	Blocked []string `yaml:"blocked"`
	// BlockedPatterns are regular expressions; a value matching any is blocked.
	BlockedPatterns []string `yaml:"blocked_patterns"`
	// ExtraTraits are trait names whose values are identifiers too; the trait
	// name is the identifier type (priority after the built-ins unless listed
	// in Types).
	ExtraTraits []string `yaml:"extra_traits"`

	compiled *compiled
}

type compiled struct {
	rank    map[string]int // type -> priority
	limit   map[string]int
	blocked map[string]struct{}
	// maxBlocked is the length in bytes of the longest blocked value.
	maxBlocked int
	patterns   []*regexp.Regexp
}

// DefaultRules are the rules written into a new data dir's config.
func DefaultRules() Rules {
	return Rules{
		Types: []TypeRule{
			{Type: UserID, Priority: 1, Limit: 1},
			{Type: Email, Priority: 2, Limit: 5},
			{Type: Phone, Priority: 3, Limit: 5},
			{Type: DeviceID, Priority: 4},
			{Type: AnonymousID, Priority: 5},
		},
		Blocked: []string{
			"", "-1", "null", "undefined", "none", "nil", "nan", "true", "false",
			"[object Object]", "anonymous", "guest", "unknown", "not_authenticated",
			"id", "distinct_id", "email", "test@test.com", "test@example.com",
			"user_id", "anonymous_id", "0",
		},
		BlockedPatterns: []string{`^[0-]*$`},
	}
}

// Compile checks the rules and prepares them for use.
func (r *Rules) Compile() error {
	c := &compiled{rank: map[string]int{}, limit: map[string]int{}, blocked: map[string]struct{}{}}
	maxPrio := 0
	for _, t := range r.Types {
		if t.Type == "" {
			return fmt.Errorf("identity rules: a type entry has no name")
		}
		if t.Priority < 1 {
			return fmt.Errorf("identity rules: type %s: priority must be 1 or more", t.Type)
		}
		if t.Limit < 0 {
			return fmt.Errorf("identity rules: type %s: limit must be 0 (none) or more", t.Type)
		}
		if _, dup := c.rank[t.Type]; dup {
			return fmt.Errorf("identity rules: type %s listed twice", t.Type)
		}
		c.rank[t.Type] = t.Priority
		c.limit[t.Type] = t.Limit
		maxPrio = max(maxPrio, t.Priority)
	}
	for _, name := range r.ExtraTraits {
		if _, ok := c.rank[name]; !ok {
			maxPrio++
			c.rank[name] = maxPrio
		}
	}
	for _, v := range r.Blocked {
		v = strings.ToLower(strings.TrimSpace(v))
		c.blocked[v] = struct{}{}
		c.maxBlocked = max(c.maxBlocked, len(v))
	}
	for _, p := range r.BlockedPatterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return fmt.Errorf("identity rules: blocked pattern %q: %w", p, err)
		}
		c.patterns = append(c.patterns, re)
	}
	r.compiled = c
	return nil
}

func (r *Rules) c() *compiled {
	if r.compiled == nil {
		if err := r.Compile(); err != nil {
			panic(err) // callers compile at load time; this is a programming error
		}
	}
	return r.compiled
}

// Priority of a type; unknown types rank last.
func (r *Rules) Priority(typ string) int {
	if p, ok := r.c().rank[typ]; ok {
		return p
	}
	return 1 << 20
}

// Limit of a type per profile; 0 means none.
func (r *Rules) Limit(typ string) int { return r.c().limit[typ] }

// IsBlocked reports whether a normalised value may not be used as an
// identifier.
func (r *Rules) IsBlocked(value string) bool {
	c := r.c()
	if c.isBlockedValue(value) {
		return true
	}
	for _, re := range c.patterns {
		if re.MatchString(value) {
			return true
		}
	}
	return false
}

// isBlockedValue reports whether value, lower-cased, is a blocked value.
// Nearly every identifier is ASCII and longer than any blocked value, and
// lower-casing ASCII keeps the length, so those are answered without
// lower-casing; shorter ASCII values are lower-cased on the stack. Values
// with other bytes, whose length lower-casing may change, take
// strings.ToLower. (This check ran on every identifier of every event.)
func (c *compiled) isBlockedValue(value string) bool {
	for i := 0; i < len(value); i++ {
		if value[i] >= utf8.RuneSelf {
			_, ok := c.blocked[strings.ToLower(value)]
			return ok
		}
	}
	if len(value) > c.maxBlocked {
		return false
	}
	var buf [64]byte
	if len(value) > len(buf) {
		_, ok := c.blocked[strings.ToLower(value)]
		return ok
	}
	for i := 0; i < len(value); i++ {
		ch := value[i]
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		buf[i] = ch
	}
	_, ok := c.blocked[string(buf[:len(value)])]
	return ok
}

// SortByPriority orders ids highest priority first, stable for ties.
func (r *Rules) SortByPriority(ids []ID) {
	// Insertion sort: an event has a handful of identifiers.
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && r.Priority(ids[j].Type) < r.Priority(ids[j-1].Type); j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
}
