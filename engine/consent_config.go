package engine

import "github.com/loupe-cdp/loupe/engine/consent"

// ConsentConfig is the `consent:` section of loupe.yaml: purposes, the
// categoryPreferences -> purpose map, jurisdiction defaults, data-subject
// request deadlines and the controller named in receipts. See
// consent.Config for the fields and consent.DefaultConfig for the defaults.
type ConsentConfig = consent.Config

// DefaultConsentConfig is the consent section of a new data dir.
func DefaultConsentConfig() ConsentConfig { return consent.DefaultConfig() }

// consentConfigSource returns the data dir's consent configuration, the
// `consent:` section of loupe.yaml.
func (e *Engine) consentConfigSource() ConsentConfig { return e.cfg.Consent }
