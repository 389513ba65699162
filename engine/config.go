package engine

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/loupe-cdp/loupe/engine/identity"
)

// ConfigFile is the name of the configuration file in the data dir.
const ConfigFile = "loupe.yaml"

// Config is the data dir's configuration, loupe.yaml. A new data dir gets
// the defaults written out so they can be read and edited.
type Config struct {
	Identity identity.Rules `yaml:"identity"`
	Profiles ProfileConfig  `yaml:"profiles"`
	Consent  ConsentConfig  `yaml:"consent"`
	TUI      TUIConfig      `yaml:"tui"`
}

// ProfileConfig shapes what is materialised per profile.
type ProfileConfig struct {
	// SumProperties are numeric event properties summed per event name
	// (for the rules' sum()).
	SumProperties []string `yaml:"sum_properties"`
	// KeyTraits are the traits shown as columns in lists.
	KeyTraits []string `yaml:"key_traits"`
	// RecentPerEvent caps the occurrences kept per event name for windowed
	// rule functions such as event_count(name, "30d").
	RecentPerEvent int `yaml:"recent_per_event"`
	// TraitHistory caps the earlier values kept per trait.
	TraitHistory int `yaml:"trait_history"`
}

// TUIConfig configures the workbench.
type TUIConfig struct {
	// Keys rebinds actions: action name -> keys, e.g. {"quit": ["q", "ctrl+c"]}.
	Keys map[string][]string `yaml:"keys,omitempty"`
}

// DefaultConfig is the configuration of a new data dir.
func DefaultConfig() Config {
	return Config{
		Identity: identity.DefaultRules(),
		Profiles: ProfileConfig{
			SumProperties:  []string{"revenue", "value", "total", "quantity"},
			KeyTraits:      []string{"plan", "country"},
			RecentPerEvent: 1000,
			TraitHistory:   50,
		},
		Consent: DefaultConsentConfig(),
	}
}

const configHeader = `# Loupe configuration for this data dir. Edit and re-run; see README.md.
#
# identity.types: per identifier type, a priority (1 is highest) and a limit
#   per profile (0 = none). When an event would join profiles so that a limit
#   breaks, its lowest-priority identifiers are dropped one at a time.
# identity.blocked / blocked_patterns: values never used as identifiers
#   (case-insensitive; patterns are Go regular expressions).
# identity.extra_traits: trait names whose values are identifiers too.
`

// loadConfig reads dir/loupe.yaml, writing the defaults when it is absent.
func loadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, ConfigFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		cfg := DefaultConfig()
		var buf bytes.Buffer
		buf.WriteString(configHeader)
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(cfg); err != nil {
			return Config{}, fmt.Errorf("write default config: %w", err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
			return Config{}, fmt.Errorf("write default config: %w", err)
		}
		return cfg, cfg.Identity.Compile()
	}
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	cfg := DefaultConfig()
	// Lists in the file replace the defaults rather than merging with them.
	cfg.Identity = identity.Rules{}
	cfg.Profiles.SumProperties, cfg.Profiles.KeyTraits = nil, nil
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(cfg.Identity.Types) == 0 {
		cfg.Identity.Types = identity.DefaultRules().Types
	}
	if cfg.Profiles.RecentPerEvent <= 0 {
		cfg.Profiles.RecentPerEvent = 1000
	}
	if cfg.Profiles.TraitHistory <= 0 {
		cfg.Profiles.TraitHistory = 50
	}
	if err := cfg.Identity.Compile(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := cfg.Consent.Compile(); err != nil {
		return Config{}, fmt.Errorf("%s: consent: %w", path, err)
	}
	return cfg, nil
}
