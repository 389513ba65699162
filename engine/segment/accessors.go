package segment

import (
	stdjson "encoding/json"
	"fmt"
	"math"
	"strconv"
)

// ContextTraits returns context.traits, or nil when absent or not an object.
func (e *Event) ContextTraits() map[string]any {
	m, _ := e.Context.Traits.(map[string]any)
	return m
}

// DeviceID returns context.device.id as a string ("" when absent).
func (e *Event) DeviceID() string {
	return stringify(e.Context.Device.ID)
}

// Trait looks name up in traits first, then in context.traits (where
// track and page events from analytics.js carry cached identify traits).
func (e *Event) Trait(name string) (any, bool) {
	if v, ok := e.Traits[name]; ok {
		return v, true
	}
	v, ok := e.ContextTraits()[name]
	return v, ok
}

// Email returns traits.email, else context.traits.email, exactly as sent
// (not trimmed or lower-cased); only string values count.
func (e *Event) Email() string { return e.stringTrait("email") }

// Phone returns traits.phone, else context.traits.phone, exactly as sent;
// only string values count.
func (e *Event) Phone() string { return e.stringTrait("phone") }

func (e *Event) stringTrait(name string) string {
	if s, ok := e.Traits[name].(string); ok && s != "" {
		return s
	}
	s, _ := e.ContextTraits()[name].(string)
	return s
}

// IPAddress returns context.ip when it is a JSON string, "" otherwise.
func (e *Event) IPAddress() string {
	s, _ := e.Context.IP.decode().(string)
	return s
}

// ConsentObject decodes context.consent: nil when it is absent, not an
// object, or holds what the decoders cannot take (a number out of range).
// It decodes anew at each call.
func (e *Event) ConsentObject() map[string]any {
	m, _ := e.Context.Consent.decode().(map[string]any)
	return m
}

// ConsentPreferences returns context.consent.categoryPreferences, keeping
// only boolean values. ok is false when the message carries no such object.
func (e *Event) ConsentPreferences() (prefs map[string]bool, ok bool) {
	cp, ok := e.ConsentObject()["categoryPreferences"].(map[string]any)
	if !ok {
		return nil, false
	}
	prefs = make(map[string]bool, len(cp))
	for k, v := range cp {
		if b, isBool := v.(bool); isBool {
			prefs[k] = b
		}
	}
	return prefs, true
}

// GPC reports whether the message carries context.gpc == true (the Global
// Privacy Control signal).
func (e *Event) GPC() bool {
	b, _ := e.Context.GPC.(bool)
	return b
}

// stringify renders an identifier-like JSON value as a string.
func stringify(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1e21 {
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	case stdjson.Number:
		return v.String()
	default:
		return fmt.Sprint(v)
	}
}

// WholeContext decodes the message's whole context object from Raw.
// Event.Context holds only the members Loupe reads; this is for the rest
// (page, userAgent, library, os, ...). It returns nil when the message has
// no context object.
func (e *Event) WholeContext() map[string]any {
	var m struct {
		Context map[string]any `json:"context"`
	}
	if stdjson.Unmarshal(e.Raw, &m) != nil {
		return nil
	}
	return m.Context
}
