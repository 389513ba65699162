package consent

import (
	"fmt"
	"regexp"
	"strings"
)

// Config is the consent section of a data dir's configuration.
type Config struct {
	// Purposes are the purposes a decision can be about.
	Purposes []string `yaml:"purposes"`
	// Categories maps Segment consent categories (context.consent.
	// categoryPreferences keys, matched case-insensitively) to purposes.
	// A category may map to several purposes; unmapped categories are
	// ignored.
	Categories map[string][]string `yaml:"categories"`
	// DefaultJurisdiction applies to a profile none of whose records names
	// a jurisdiction.
	DefaultJurisdiction string `yaml:"default_jurisdiction"`
	// Jurisdictions says, per jurisdiction, which purposes are consented
	// until the person opts out (opt_out; "*" for all). Every other purpose
	// is opt-in: not consented until granted. A jurisdiction not listed is
	// opt-in for everything.
	Jurisdictions map[string]JurisdictionRule `yaml:"jurisdictions"`
	// GPCJurisdiction is the jurisdiction recorded with a Global Privacy
	// Control opt-out.
	GPCJurisdiction string `yaml:"gpc_jurisdiction"`
	// DSRDueDays is the response deadline of data-subject requests per
	// jurisdiction, in days; "default" applies to the rest.
	DSRDueDays map[string]int `yaml:"dsr_due_days"`
	// Controller names the data controller in consent receipts.
	Controller Controller `yaml:"controller"`

	categories map[string][]string // lower-cased
}

// JurisdictionRule is one jurisdiction's default model.
type JurisdictionRule struct {
	OptOut []string `yaml:"opt_out,omitempty"`
}

// Controller identifies the data controller in receipts.
type Controller struct {
	Name      string `yaml:"name"`
	Contact   string `yaml:"contact"`
	Email     string `yaml:"email"`
	Address   string `yaml:"address"`
	PolicyURL string `yaml:"policy_url"`
}

// SaleOrSharing is the CCPA/CPRA "Do Not Sell or Share" purpose, the one a
// Global Privacy Control signal opts out of.
const SaleOrSharing = "sale_or_sharing"

// DefaultConfig is the consent configuration of a new data dir.
func DefaultConfig() Config {
	return Config{
		Purposes: []string{"analytics", "marketing_email", "marketing_sms", "personalization", "advertising", SaleOrSharing},
		Categories: map[string][]string{
			"analytics":       {"analytics"},
			"advertising":     {"advertising"},
			"marketing":       {"marketing_email"},
			"functional":      {"personalization"},
			"personalization": {"personalization"},
		},
		DefaultJurisdiction: "GDPR",
		Jurisdictions: map[string]JurisdictionRule{
			"GDPR":    {},
			"UK-GDPR": {},
			"LGPD":    {},
			"CCPA":    {OptOut: []string{SaleOrSharing}},
			"CPRA":    {OptOut: []string{SaleOrSharing}},
		},
		GPCJurisdiction: "CCPA",
		DSRDueDays:      map[string]int{"GDPR": 30, "UK-GDPR": 30, "CCPA": 45, "CPRA": 45, "LGPD": 15, "default": 30},
	}
}

var purposeName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Compile checks the configuration and prepares the case-insensitive
// category map. Missing sections take their defaults.
func (c *Config) Compile() error {
	d := DefaultConfig()
	if len(c.Purposes) == 0 {
		c.Purposes = d.Purposes
	}
	if c.Categories == nil {
		c.Categories = d.Categories
	}
	if c.DefaultJurisdiction == "" {
		c.DefaultJurisdiction = d.DefaultJurisdiction
	}
	if c.Jurisdictions == nil {
		c.Jurisdictions = d.Jurisdictions
	}
	if c.GPCJurisdiction == "" {
		c.GPCJurisdiction = d.GPCJurisdiction
	}
	if c.DSRDueDays == nil {
		c.DSRDueDays = d.DSRDueDays
	}
	for _, p := range c.Purposes {
		if !purposeName.MatchString(p) {
			return fmt.Errorf("consent.purposes: %q is not a purpose name (lower-case letters, digits, _)", p)
		}
	}
	c.categories = make(map[string][]string, len(c.Categories))
	for cat, ps := range c.Categories {
		for _, p := range ps {
			if !c.HasPurpose(p) {
				return fmt.Errorf("consent.categories.%s: %q is not a configured purpose", cat, p)
			}
		}
		k := strings.ToLower(strings.TrimSpace(cat))
		c.categories[k] = append(c.categories[k], ps...)
	}
	// Segment's consent tools send the categories capitalised
	// ("Advertising"): keeping that spelling too answers them without
	// lower-casing, which every banner event did for each category.
	var capitalised []string
	for k := range c.categories {
		if k != "" && 'a' <= k[0] && k[0] <= 'z' {
			capitalised = append(capitalised, k)
		}
	}
	for _, k := range capitalised {
		if t := string(k[0]-('a'-'A')) + k[1:]; c.categories[t] == nil {
			c.categories[t] = c.categories[k]
		}
	}
	for j, r := range c.Jurisdictions {
		for _, p := range r.OptOut {
			if p != "*" && !c.HasPurpose(p) {
				return fmt.Errorf("consent.jurisdictions.%s.opt_out: %q is not a configured purpose", j, p)
			}
		}
	}
	for j, n := range c.DSRDueDays {
		if n <= 0 {
			return fmt.Errorf("consent.dsr_due_days.%s: %d is not a number of days", j, n)
		}
	}
	return nil
}

// HasPurpose reports whether p is a configured purpose.
func (c *Config) HasPurpose(p string) bool { return contains(c.Purposes, p) }

// CategoryPurposes maps a Segment consent category to purposes,
// case-insensitively; nil when unmapped.
func (c *Config) CategoryPurposes(category string) []string {
	if c.categories == nil {
		// Not compiled: fall back to a scan.
		for k, v := range c.Categories {
			if strings.EqualFold(strings.TrimSpace(k), strings.TrimSpace(category)) {
				return v
			}
		}
		return nil
	}
	if ps, ok := c.categories[category]; ok {
		return ps
	}
	return c.categories[strings.ToLower(strings.TrimSpace(category))]
}

// Jurisdiction normalises a jurisdiction name ("gdpr" -> "GDPR").
func Jurisdiction(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// DefaultGranted reports whether, with no record, purpose is consented
// under jurisdiction (opt-out) or not (opt-in).
func (c *Config) DefaultGranted(jurisdiction, purpose string) bool {
	r, ok := c.Jurisdictions[Jurisdiction(jurisdiction)]
	if !ok {
		return false
	}
	for _, p := range r.OptOut {
		if p == "*" || p == purpose {
			return true
		}
	}
	return false
}

// DueDays is the response deadline of a data-subject request under
// jurisdiction.
func (c *Config) DueDays(jurisdiction string) int {
	if n, ok := c.DSRDueDays[Jurisdiction(jurisdiction)]; ok {
		return n
	}
	if n, ok := c.DSRDueDays["default"]; ok {
		return n
	}
	return 30
}
