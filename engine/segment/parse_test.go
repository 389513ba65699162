package segment

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// Payload shapes follow the Segment Spec docs and analytics.js output.
const (
	identifyMsg = `{
  "anonymousId": "507f191e810c19729de860ea",
  "channel": "browser",
  "context": {"ip": "8.8.8.8", "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_2)"},
  "integrations": {"All": false, "Mixpanel": true, "Salesforce": true},
  "messageId": "022bb90c-bbac-11e4-8dfc-aa07a5b093db",
  "receivedAt": "2015-02-23T22:28:55.387Z",
  "sentAt": "2015-02-23T22:28:55.111Z",
  "timestamp": "2015-02-23T22:28:55.111Z",
  "traits": {"name": "Peter Gibbons", "email": "peter@example.com", "plan": "premium", "logins": 5,
             "address": {"street": "6th St", "city": "San Francisco", "state": "CA", "postalCode": "94103", "country": "USA"}},
  "type": "identify",
  "userId": "97980cfea0067",
  "version": "1.1"
}`
	pageMsg   = `{"anonymousId":"507f191e810c19729de860ea","channel":"browser","context":{"ip":"8.8.8.8","userAgent":"Mozilla/5.0","page":{"path":"/academy/","title":"Analytics Academy","url":"https://segment.com/academy/"},"consent":{"categoryPreferences":{"Analytics":true,"Advertising":false,"Marketing":"yes"}},"gpc":true},"integrations":{},"messageId":"ajs-f8ca1e4de5024d9430b3928bd8ac6b96","name":"Home","properties":{"title":"Welcome | Initech","url":"https://segment.com/"},"receivedAt":"2015-02-23T22:28:55.387Z","sentAt":"2015-02-23T22:28:55.111Z","timestamp":"2015-02-23T22:28:55.111Z","type":"page","userId":"97980cfea0067","version":"1.1"}`
	screenMsg = `{"type":"screen","name":"Home","properties":{"Feed Type":"private"},"context":{"device":{"id":"B5372DB0-C21E-11E4-8DFC-AA07A5B093DB","type":"ios"},"os":{"name":"iPhone OS","version":"8.1.3"},"traits":{"email":"peter@example.com"}},"anonymousId":"3a12eab0-bca7-11e4-8dfc-aa07a5b093db","messageId":"m-screen","timestamp":"2015-02-23T22:28:55.111Z"}`
	groupMsg  = `{"type":"group","groupId":"0e8c78ea9d97a7b8185e8632","traits":{"name":"Initech","industry":"Technology","employees":329,"plan":"enterprise"},"userId":"97980cfea0067","messageId":"m-group","timestamp":"2015-02-23T22:28:55.111Z"}`
	aliasMsg  = `{"type":"alias","previousId":"39239-239239-239239-23923","userId":"507f191e81","messageId":"m-alias","timestamp":"2015-02-23T22:28:55.111Z"}`
	trackMsg  = `{"type":"Track","event":"Order Completed","userId":"u1","properties":{"order_id":"50314b8e9bcf000000000000","revenue":25.5,"currency":"USD","products":[{"product_id":"507f1f77bcf86cd799439011","price":19.99}]},"context":{"device":{"id":12345},"traits":{"email":"ctx@example.com","phone":"+1 415-555-0100"}},"timestamp":"2015-02-23T22:28:55Z"}`
)

func mustParse(t *testing.T, s string) Event {
	t.Helper()
	ev, err := Parse([]byte(s), testNow)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, s)
	}
	return ev
}

func TestParseIdentify(t *testing.T) {
	ev := mustParse(t, identifyMsg)
	if ev.Type != TypeIdentify || ev.UserID != "97980cfea0067" || ev.AnonymousID != "507f191e810c19729de860ea" {
		t.Fatalf("ids: %+v", ev)
	}
	if ev.MessageID != "022bb90c-bbac-11e4-8dfc-aa07a5b093db" {
		t.Errorf("MessageID = %q", ev.MessageID)
	}
	if want := time.Date(2015, 2, 23, 22, 28, 55, 111e6, time.UTC); !ev.Timestamp.Equal(want) || !ev.SentAt.Equal(want) {
		t.Errorf("Timestamp = %v, SentAt = %v", ev.Timestamp, ev.SentAt)
	}
	if ev.Email() != "peter@example.com" || ev.Traits["logins"] != float64(5) {
		t.Errorf("traits: %v", ev.Traits)
	}
	if strings.ContainsAny(string(ev.Raw), "\n") || !strings.Contains(string(ev.Raw), `"name":"Peter Gibbons"`) {
		t.Errorf("Raw not compacted: %s", ev.Raw)
	}
}

func TestParseRawSharesCompactInput(t *testing.T) {
	// Compact input (as SDKs send it) is Raw itself, not copied; the fields
	// are copies either way. Input with whitespace to drop gets a
	// compacted copy.
	for _, c := range []struct {
		name   string
		in     string
		shared bool
	}{
		{"compact", `{"type":"page","name":"Home","anonymousId":"a1","properties":{"title":"A b"}}`, true},
		{"spaced", "{\"type\": \"page\", \"name\": \"Home\",\n \"anonymousId\": \"a1\"}", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			buf := []byte(c.in)
			ev, err := Parse(buf, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if shared := &ev.Raw[0] == &buf[0]; shared != c.shared {
				t.Fatalf("Raw shares the input: %v, want %v", shared, c.shared)
			}
			want := string(ev.Raw)
			for i := range buf {
				buf[i] = 'x'
			}
			if ev.Name != "Home" || ev.AnonymousID != "a1" {
				t.Fatalf("fields alias the input buffer: %+v", ev)
			}
			if !c.shared && string(ev.Raw) != want {
				t.Fatalf("the compacted copy aliases the input: %s", ev.Raw)
			}
		})
	}
}

func TestParseKinds(t *testing.T) {
	page := mustParse(t, pageMsg)
	if page.Type != TypePage || page.Name != "Home" || page.PropertyMap()["title"] != "Welcome | Initech" {
		t.Errorf("page: %+v", page)
	}
	prefs, ok := page.ConsentPreferences()
	if !ok || len(prefs) != 2 || !prefs["Analytics"] || prefs["Advertising"] {
		t.Errorf("ConsentPreferences = %v, %v", prefs, ok)
	}
	if !page.GPC() {
		t.Error("GPC = false")
	}
	screen := mustParse(t, screenMsg)
	if screen.Type != TypeScreen || screen.DeviceID() != "B5372DB0-C21E-11E4-8DFC-AA07A5B093DB" || screen.Email() != "peter@example.com" {
		t.Errorf("screen: %+v", screen)
	}
	if _, ok := screen.ConsentPreferences(); ok || screen.GPC() {
		t.Error("screen has no consent")
	}
	group := mustParse(t, groupMsg)
	if group.Type != TypeGroup || group.GroupID != "0e8c78ea9d97a7b8185e8632" || group.Traits["plan"] != "enterprise" {
		t.Errorf("group: %+v", group)
	}
	alias := mustParse(t, aliasMsg)
	if alias.Type != TypeAlias || alias.PreviousID != "39239-239239-239239-23923" || alias.UserID != "507f191e81" {
		t.Errorf("alias: %+v", alias)
	}
	track := mustParse(t, trackMsg)
	if track.Type != TypeTrack || track.Event != "Order Completed" || track.PropertyMap()["revenue"] != 25.5 {
		t.Errorf("track: %+v", track)
	}
	if track.DeviceID() != "12345" || track.Phone() != "+1 415-555-0100" || track.Email() != "ctx@example.com" {
		t.Errorf("accessors: %q %q %q", track.DeviceID(), track.Phone(), track.Email())
	}
	if v, ok := track.Trait("email"); !ok || v != "ctx@example.com" {
		t.Errorf("Trait(email) = %v, %v", v, ok)
	}
	if track.ContextTraits()["phone"] == nil || track.Traits != nil {
		t.Error("context traits must not be merged into traits")
	}
	if !strings.HasPrefix(track.MessageID, DerivedIDPrefix) || len(track.MessageID) != len(DerivedIDPrefix)+32 {
		t.Errorf("derived MessageID = %q", track.MessageID)
	}
}

func TestParseNumericIDs(t *testing.T) {
	for in, want := range map[string]string{
		`12345`:                "12345",
		`12345678901234567890`: "12345678901234567890",
		`-7`:                   "-7",
		`1e3`:                  "1000",
		`1.5e10`:               "15000000000",
		`2.50`:                 "2.5",
		`null`:                 "",
	} {
		ev, err := Parse([]byte(`{"type":"identify","anonymousId":"a","userId":`+in+`}`), testNow)
		if err != nil || ev.UserID != want {
			t.Errorf("userId %s: got %q, %v; want %q", in, ev.UserID, err, want)
		}
	}
	ev := mustParse(t, `{"type":"page","anonymousId":4.2e1,"userId":"esc\u00e9\"q"}`)
	if ev.AnonymousID != "42" || ev.UserID != `escé"q` {
		t.Errorf("ids: %q %q", ev.AnonymousID, ev.UserID)
	}
}

func TestParseTimestamps(t *testing.T) {
	ts := func(y, mo, d, h, mi, s, ns int) time.Time {
		return time.Date(y, time.Month(mo), d, h, mi, s, ns, time.UTC)
	}
	cases := []struct {
		fields string
		want   time.Time
	}{
		{`"timestamp":"2026-03-01T10:00:00Z","originalTimestamp":"2026-03-01T09:00:00Z"`, ts(2026, 3, 1, 10, 0, 0, 0)},
		{`"originalTimestamp":"2026-03-01T09:00:00.5+02:00","receivedAt":"2026-03-02T00:00:00Z"`, ts(2026, 3, 1, 7, 0, 0, 5e8)},
		{`"receivedAt":"2026-03-02T00:00:00.123456Z","sentAt":"2026-03-01T00:00:00Z"`, ts(2026, 3, 2, 0, 0, 0, 123456e3)},
		{`"sentAt":"2026-03-01T00:00:00-0500"`, ts(2026, 3, 1, 5, 0, 0, 0)},
		{`"timestamp":"2026-03-01T12:30:00"`, ts(2026, 3, 1, 12, 30, 0, 0)},
		{`"timestamp":"2026-03-01T12:30:00.250"`, ts(2026, 3, 1, 12, 30, 0, 25e7)},
		{`"timestamp":""`, testNow},
		{`"timestamp":null`, testNow},
		{`"x":1`, testNow},
	}
	for _, c := range cases {
		ev, err := Parse([]byte(`{"type":"page","userId":"u",`+c.fields+`}`), testNow)
		if err != nil {
			t.Errorf("%s: %v", c.fields, err)
			continue
		}
		if !ev.Timestamp.Equal(c.want) || ev.Timestamp.Location() != time.UTC {
			t.Errorf("%s: Timestamp = %v, want %v", c.fields, ev.Timestamp, c.want)
		}
	}
}

func TestParseValidation(t *testing.T) {
	cases := []struct {
		in, field, reason string
	}{
		{`{"type":"track","userId":"u"`, "", "invalid JSON"},
		{`not json`, "", "invalid JSON"},
		{``, "", "empty message"},
		{`[{"type":"track"}]`, "", "not a JSON object"},
		{`"track"`, "", "not a JSON object"},
		{`{"userId":"u"}`, "type", "missing type"},
		{`{"type":"purchase","userId":"u"}`, "type", `unknown type "purchase"`},
		{`{"type":7,"userId":"u"}`, "type", "must be a string"},
		{`{"type":"track","userId":"u"}`, "event", "track without event name"},
		{`{"type":"track","event":"","userId":"u"}`, "event", "track without event name"},
		{`{"type":"identify","traits":{"a":1}}`, "userId", "identify without userId and anonymousId"},
		{`{"type":"page","userId":"","anonymousId":null}`, "userId", "page without userId and anonymousId"},
		{`{"type":"alias","anonymousId":"a"}`, "userId", "alias without userId and previousId"},
		{`{"type":"identify","userId":true}`, "userId", "must be a string or a number"},
		{`{"type":"identify","userId":"u","anonymousId":{"x":1}}`, "anonymousId", "must be a string or a number"},
		{`{"type":"identify","userId":"u","traits":["a"]}`, "traits", "must be a JSON object"},
		{`{"type":"track","event":"e","userId":"u","properties":"x"}`, "properties", "must be a JSON object"},
		{`{"type":"track","event":"e","userId":"u","context":1}`, "context", "must be a JSON object"},
		{`{"type":"page","userId":"u","timestamp":"yesterday"}`, "timestamp", "malformed timestamp"},
		{`{"type":"page","userId":"u","sentAt":"2026-13-01T00:00:00Z"}`, "sentAt", "malformed timestamp"},
		{`{"type":"page","userId":"u","receivedAt":1700000000}`, "receivedAt", "must be a string"},
		{`{"type":"page","userId":"u","originalTimestamp":"2026-01-01"}`, "originalTimestamp", "malformed timestamp"},
		// Members of context that Parse does not decode are still validated.
		{`{"type":"page","userId":"u","context":{"page":{"path":tru}}}`, "", "invalid JSON"},
		{`{"type":"page","userId":"u","context":{"userAgent":"a` + "\x01" + `b"}}`, "", "invalid JSON"},
		{`{"type":"page","userId":"u","context":{"locale":"en",}}`, "", "invalid JSON"},
		// goccy/go-json accepts these numbers inside the members it decodes.
		{`{"type":"identify","userId":"u","traits":{"n":000}}`, "", "invalid JSON"},
		{`{"type":"track","event":"e","userId":"u","properties":{"n":[1.]}}`, "", "invalid JSON"},
		{`{"type":"track","event":"e","userId":"u","properties":{"n":-01}}`, "", "invalid JSON"},
		{`{"type":"group","userId":"u","traits":{"` + "\x12" + `":""}}`, "", "invalid JSON"},
		{`{"type":"identify","userId":"u","traits":{"a":"\q"}}`, "", "invalid JSON"},
		{`{"type":"identify","userId":"u","traits":{"a":"\u12G4"}}`, "", "invalid JSON"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.in), testNow)
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: err = %v, want *ValidationError", c.in, err)
			continue
		}
		if ve.Field != c.field || !strings.Contains(ve.Reason, c.reason) || !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%s: got field %q reason %q, want %q %q", c.in, ve.Field, ve.Reason, c.field, c.reason)
		}
	}
	err := &ValidationError{Field: "event", Reason: "track without event name"}
	if got := err.Error(); got != `field "event": track without event name` {
		t.Errorf("Error() = %s", got)
	}
}

// TestParseContext pins what Event.Context holds: the members Loupe reads,
// whatever their JSON type, and nothing else; WholeContext has the rest.
func TestParseContext(t *testing.T) {
	ev := mustParse(t, `{"type":"page","userId":"u","context":{"ip":"8.8.8.8","gpc":true,"traits":"not an object","device":{"id":7},"consent":null,"page":{"path":"/a"},"userAgent":"UA"}}`)
	want := Context{IP: RawJSON(`"8.8.8.8"`), GPC: true, Traits: "not an object", Device: Device{ID: float64(7)}}
	if !reflect.DeepEqual(ev.Context, want) {
		t.Errorf("Context = %#v, want %#v", ev.Context, want)
	}
	if ev.DeviceID() != "7" || !ev.GPC() || ev.ContextTraits() != nil {
		t.Errorf("accessors: device %q gpc %v traits %v", ev.DeviceID(), ev.GPC(), ev.ContextTraits())
	}
	whole := ev.WholeContext()
	if whole["userAgent"] != "UA" || whole["page"].(map[string]any)["path"] != "/a" || len(whole) != 7 {
		t.Errorf("WholeContext = %v", whole)
	}
	if ev := mustParse(t, `{"type":"page","userId":"u"}`); !reflect.DeepEqual(ev.Context, Context{}) || ev.WholeContext() != nil {
		t.Errorf("no context: Context %v, WholeContext %v", ev.Context, ev.WholeContext())
	}
}

// TestParseConsent pins what context.consent yields: its bytes as sent,
// decoded on demand as Parse used to decode them, whichever path parses
// the message.
func TestParseConsent(t *testing.T) {
	for _, c := range []struct {
		consent string
		prefs   map[string]bool // nil: ConsentPreferences reports none
		jur     any
	}{
		{`{"categoryPreferences":{"Analytics":true,"Ads":false},"jurisdiction":"FR"}`, map[string]bool{"Analytics": true, "Ads": false}, "FR"},
		{`{ "categoryPreferences" : { "Analytics" : true } }`, map[string]bool{"Analytics": true}, nil},
		{`{"categoryPreferences":{"Analyt\u0069cs":true,"x":"yes"},"jurisdiction":"\u0046R"}`, map[string]bool{"Analytics": true}, "FR"},
		{`{"categoryPreferences":{"Ads":true,"Ads":false}}`, map[string]bool{"Ads": false}, nil},
		{`{"categoryPreferences":{"Ads":true},"n":1e700}`, nil, nil}, // what the decoders cannot take
		{`{"jurisdiction":"FR"}`, nil, "FR"},
		{`["Analytics"]`, nil, nil},
		{`"granted"`, nil, nil},
	} {
		ev := mustParse(t, `{"type":"page","userId":"u","context":{"consent":`+c.consent+`}}`)
		if string(ev.Context.Consent) != c.consent {
			t.Errorf("consent %s: Context.Consent %s, want the bytes as sent", c.consent, ev.Context.Consent)
		}
		prefs, ok := ev.ConsentPreferences()
		if ok != (c.prefs != nil) || !reflect.DeepEqual(prefs, c.prefs) && c.prefs != nil {
			t.Errorf("consent %s: ConsentPreferences %v, %v; want %v", c.consent, prefs, ok, c.prefs)
		}
		if got := ev.ConsentObject()["jurisdiction"]; got != c.jur {
			t.Errorf("consent %s: jurisdiction %v, want %v", c.consent, got, c.jur)
		}
	}
	for _, in := range []string{`{"type":"page","userId":"u","context":{"consent":null}}`, `{"type":"page","userId":"u"}`} {
		if ev := mustParse(t, in); ev.Context.Consent != nil || ev.ConsentObject() != nil {
			t.Errorf("%s: Consent %q", in, ev.Context.Consent)
		}
	}
	var garbled Event
	garbled.Context.Consent = RawJSON(`{"categoryPreferences":{"Ads":tru`)
	if garbled.ConsentObject() != nil {
		t.Error("invalid JSON decoded")
	}
}

// TestParseIPAddress pins what IPAddress reads of context.ip: a string,
// escapes and all, whichever path parses the message.
func TestParseIPAddress(t *testing.T) {
	for _, c := range []struct{ ip, want string }{
		{`"203.0.113.7"`, "203.0.113.7"},
		{`"2001:db8::1"`, "2001:db8::1"},
		{`"203.0.113.\u0037"`, "203.0.113.7"},
		{`7`, ""},
		{`["203.0.113.7"]`, ""},
		{`null`, ""},
	} {
		ev := mustParse(t, `{"type":"page","userId":"u","context":{"ip":`+c.ip+`}}`)
		if got := ev.IPAddress(); got != c.want {
			t.Errorf("ip %s: IPAddress %q, want %q", c.ip, got, c.want)
		}
	}
}

// TestParseDeviceID pins what context.device yields: its id member as
// decoded, read as a map would read it, whichever path parses the message.
func TestParseDeviceID(t *testing.T) {
	for _, c := range []struct{ device, want string }{
		{`{"id":"d1","type":"ios","model":"iPhone7,2"}`, "d1"},
		{`{ "type" : "ios" , "id" : "d1" }`, "d1"},
		{`{"id":42}`, "42"},
		{`{"i\u0064":"d1"}`, "d1"},   // escaped name: the slow path
		{`{"id":"a","id":"b"}`, "b"}, // the last of duplicates, as a map
		{`{"ID":"d1"}`, ""},          // names match exactly
		{`{"model":"x","extra":{"id":"nested"}}`, ""},
		{`{"id":null}`, ""},
		{`"d1"`, ""},
		{`["d1"]`, ""},
		{`null`, ""},
	} {
		ev := mustParse(t, `{"type":"page","userId":"u","context":{"device":`+c.device+`}}`)
		if got := ev.DeviceID(); got != c.want {
			t.Errorf("device %s: DeviceID %q, want %q", c.device, got, c.want)
		}
		if !json.Valid(ev.Raw) || !strings.Contains(string(ev.Raw), `"device":`) {
			t.Errorf("device %s: Raw %s", c.device, ev.Raw)
		}
	}
}

func TestValidNumber(t *testing.T) {
	for _, n := range []string{"0", "-0", "7", "-12", "0.5", "10.25", "1e9", "1E+9", "-2.5e-3", "0e0"} {
		if !validNumber([]byte(n)) {
			t.Errorf("%s rejected", n)
		}
	}
	for _, n := range []string{"", "-", "00", "01", "-01", "1.", ".5", "1e", "1e+", "1.e3", "1-", "1+2", "--1", "0x1"} {
		if validNumber([]byte(n)) {
			t.Errorf("%s accepted", n)
		}
	}
}

func TestDerivedIDStable(t *testing.T) {
	a := mustParse(t, `{"type":"track","event":"Product Viewed","userId":"u1","properties":{"sku":"A","price":1.50,"tags":["x","y"]},"timestamp":"2026-01-01T00:00:00Z"}`)
	b := mustParse(t, `{
	  "timestamp": "2026-01-01T00:00:00Z",
	  "properties": { "tags": ["x", "y"], "price": 1.50, "sku": "A" },
	  "userId": "u1", "event": "Product Viewed", "type": "track"
	}`)
	c := mustParse(t, `{"type":"track","event":"Product Viewed","userId":"u1","properties":{"sku":"B","price":1.50,"tags":["x","y"]},"timestamp":"2026-01-01T00:00:00Z"}`)
	if a.MessageID != b.MessageID {
		t.Errorf("key order changed the id: %s vs %s", a.MessageID, b.MessageID)
	}
	if a.MessageID == c.MessageID {
		t.Error("different content, same id")
	}
	if a.MessageID != mustParse(t, string(a.Raw)).MessageID {
		t.Error("re-parsing Raw changed the id")
	}
}
