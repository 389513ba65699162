package demo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/loupe-cdp/loupe/engine/segment"
)

func generate(t testing.TB, opts Options) ([]byte, Summary) {
	t.Helper()
	var buf bytes.Buffer
	sum, err := Generate(context.Background(), &buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), sum
}

func TestApproxBytes(t *testing.T) {
	for _, n := range []int{1000, 3000} { // bigger runs vary less, and take long under -race
		opts := Options{Profiles: n, Seed: int64(n)}
		b, sum := generate(t, opts)
		if sum.Bytes != int64(len(b)) {
			t.Fatalf("%d people: summary says %d bytes, wrote %d", n, sum.Bytes, len(b))
		}
		if got, ratio := ApproxBytes(opts), float64(ApproxBytes(opts))/float64(len(b)); ratio < 0.9 || ratio > 1.1 {
			t.Errorf("%d people: ApproxBytes %d, wrote %d (%.2fx)", n, got, len(b), ratio)
		}
	}
}

func TestDeterministic(t *testing.T) {
	a, sa := generate(t, Options{Profiles: 2300, Seed: 7})
	prev := runtime.GOMAXPROCS(1)
	b, sb := generate(t, Options{Profiles: 2300, Seed: 7})
	runtime.GOMAXPROCS(prev)
	if sha256.Sum256(a) != sha256.Sum256(b) || sa.Events != sb.Events {
		t.Fatal("same seed, different output across GOMAXPROCS")
	}
	c, _ := generate(t, Options{Profiles: 2300, Seed: 8})
	if bytes.Equal(a, c) {
		t.Fatal("different seeds, same output")
	}
	d, _ := generate(t, Options{Profiles: 2300, Seed: 7, Now: DefaultNow})
	if !bytes.Equal(a, d) {
		t.Fatal("zero Now must mean DefaultNow")
	}
}

// TestRealism parses every generated message with segment.Parse and checks
// that each scenario the engine must handle appears with a stable share.
func TestRealism(t *testing.T) {
	const people = 5000
	data, sum := generate(t, Options{Profiles: people, Seed: 42})
	now := DefaultNow

	var (
		events, noMsgID, sentAt, gpc, prefs, prefFlips, consent, screens, emailTracks int
		oddEmails, phones, aliases, junk, unordered                                   int
		plans                                                                         = map[string]int{}
		anonUsers                                                                     = map[string]map[string]bool{} // anonymousId -> userIds
		userAnons                                                                     = map[string]map[string]bool{}
		orders30d                                                                     = map[string]int{}
		buyers                                                                        = map[string]bool{}
		identified                                                                    = map[string]bool{}
		lastPrefs                                                                     = map[string]string{}
		phoneUser                                                                     = map[string]string{} // digits -> userId
		deviceFirstSignedOut, deviceSignedIn, signupDevices                           = map[string]bool{}, map[string]bool{}, map[string]bool{}
		purposes, statuses, jurisdictions                                             = map[string]bool{}, map[string]bool{}, map[string]bool{}
	)
	junkIDs := map[string]bool{"null": true, "undefined": true, "0": true, "-1": true, "anonymous": true}
	var last time.Time
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for line := 0; sc.Scan(); line++ {
		ev, err := segment.Parse(sc.Bytes(), now)
		if err != nil {
			t.Fatalf("line %d: %v\n%s", line+1, err, sc.Bytes())
		}
		events++
		if ev.Timestamp.Before(now.Add(-Window)) || ev.Timestamp.After(now) {
			t.Fatalf("line %d: timestamp %v outside the window", line+1, ev.Timestamp)
		}
		if ev.Timestamp.Before(last) {
			unordered++ // only at chunk boundaries
		}
		last = ev.Timestamp
		if strings.HasPrefix(ev.MessageID, segment.DerivedIDPrefix) {
			noMsgID++
		}
		if !ev.SentAt.IsZero() {
			sentAt++
		}
		if ev.GPC() {
			gpc++
		}
		if p, ok := ev.ConsentPreferences(); ok {
			prefs++
			key := ev.AnonymousID
			s := ""
			for _, k := range []string{"Analytics", "Advertising", "Marketing", "Functional"} {
				if p[k] {
					s += "1"
				} else {
					s += "0"
				}
			}
			if old, seen := lastPrefs[key]; seen && old != s {
				prefFlips++
			}
			lastPrefs[key] = s
		}
		if d := ev.AnonymousID; d != "" { // one per device
			if _, seen := deviceFirstSignedOut[d]; !seen {
				deviceFirstSignedOut[d] = ev.UserID == ""
			}
			if ev.UserID != "" {
				deviceSignedIn[d] = true
			}
			if ev.Type == "identify" {
				signupDevices[d] = true
			}
		}
		if junkIDs[ev.UserID] || ev.Email() == "test@test.com" || ev.AnonymousID == "00000000-0000-0000-0000-000000000000" {
			junk++
			continue
		}
		if ev.UserID != "" && ev.AnonymousID != "" {
			if anonUsers[ev.AnonymousID] == nil {
				anonUsers[ev.AnonymousID] = map[string]bool{}
			}
			anonUsers[ev.AnonymousID][ev.UserID] = true
			if userAnons[ev.UserID] == nil {
				userAnons[ev.UserID] = map[string]bool{}
			}
			userAnons[ev.UserID][ev.AnonymousID] = true
		}
		switch ev.Type {
		case "identify":
			identified[ev.UserID] = true
			plans[ev.Traits["plan"].(string)]++
			email := ev.Email()
			if email != strings.ToLower(strings.TrimSpace(email)) {
				oddEmails++
			}
			if ph := ev.Phone(); ph != "" {
				phones++
				digits := strings.Map(func(r rune) rune {
					if r >= '0' && r <= '9' {
						return r
					}
					return -1
				}, ph)
				if u, ok := phoneUser[digits]; ok && u != ev.UserID {
					t.Errorf("phone %s is both %s's and %s's", ph, u, ev.UserID)
				}
				phoneUser[digits] = ev.UserID
			}
		case "alias":
			aliases++
			if ev.PreviousID == "" || ev.UserID == "" {
				t.Errorf("alias without ids: %s", ev.Raw)
			}
		case "screen":
			screens++
			if ev.DeviceID() == "" || ev.WholeContext()["os"] == nil {
				t.Errorf("screen without device or os: %s", ev.Raw)
			}
		case "page":
			if c := ev.WholeContext(); ev.DeviceID() == "" || c["page"] == nil || c["userAgent"] == nil || c["ip"] == nil {
				t.Errorf("page without web context: %s", ev.Raw)
			}
		case "track":
			switch ev.Event {
			case "Order Completed":
				buyers[ev.UserID] = true
				rev, ok := ev.PropertyMap()["revenue"].(float64)
				if !ok || rev <= 0 || ev.PropertyMap()["order_id"] == nil || ev.PropertyMap()["currency"] != "USD" {
					t.Errorf("bad order: %s", ev.Raw)
				}
				if _, ok := ev.PropertyMap()["products"].([]any); !ok {
					t.Errorf("order without products: %s", ev.Raw)
				}
				if ev.Timestamp.After(now.Add(-30 * 24 * time.Hour)) {
					orders30d[ev.UserID]++
				}
			case "Email Opened", "Email Clicked":
				emailTracks++
				if ev.Traits != nil || ev.ContextTraits()["email"] == nil {
					t.Errorf("email event shape: %s", ev.Raw)
				}
			case "Consent Updated":
				consent++
				purposes[ev.PropertyMap()["purpose"].(string)] = true
				statuses[ev.PropertyMap()["status"].(string)] = true
				jurisdictions[ev.PropertyMap()["jurisdiction"].(string)] = true
				for _, k := range []string{"legal_basis", "source", "policy_version"} {
					if ev.PropertyMap()[k] == nil {
						t.Errorf("consent without %s: %s", k, ev.Raw)
					}
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if events != sum.Events || sum.People != people {
		t.Fatalf("summary says %d events / %d people, parsed %d", sum.Events, sum.People, events)
	}
	shared, multi, repeat := 0, 0, 0
	for _, users := range anonUsers {
		if len(users) == 2 {
			shared++
		}
	}
	for _, anons := range userAnons {
		if len(anons) >= 2 {
			multi++
		}
	}
	for _, n := range orders30d {
		if n >= 2 {
			repeat++
		}
	}
	share := func(n, of int) float64 { return float64(n) / float64(of) }
	checks := []struct {
		name     string
		got      float64
		min, max float64
	}{
		{"events per person", share(events, people), 5, 8},
		{"pro plan", share(plans["pro"], len(identified)), 0.17, 0.23},
		{"buyers", share(len(buyers), people), 0.31, 0.39},
		{"2+ orders in 30 days", share(repeat, people), 0.10, 0.18}, // 14% planned, and some by chance
		{"phones", share(phones, len(identified)), 0.36, 0.44},
		{"odd-case emails", share(oddEmails, len(identified)), 0.03, 0.07},
		{"multi-device", share(multi, people), 0.17, 0.23},
		{"shared family devices", share(shared, people), 0.02, 0.04},
		{"aliases", share(aliases, people), 0.27, 0.33},
		{"junk", share(junk, people), 0.03, 0.05},
		{"no messageId", share(noMsgID, events), 0.01, 0.03},
		{"sentAt", share(sentAt, events), 0.45, 0.55},
		{"anonymous-only", share(sum.AnonymousVisitors, people), 0.24, 0.26},
	}
	for _, c := range checks {
		if c.got < c.min || c.got > c.max {
			t.Errorf("%s: %.3f, want %.2f..%.2f", c.name, c.got, c.min, c.max)
		}
	}
	for name, n := range map[string]int{"gpc": gpc, "consent prefs": prefs, "pref changes": prefFlips, "consent events": consent,
		"screens": screens, "email events": emailTracks, "out-of-order across chunks": unordered} {
		if n == 0 {
			t.Errorf("no %s", name)
		}
	}
	if len(purposes) != 6 || len(statuses) != 3 || len(jurisdictions) != 5 {
		t.Errorf("consent vocabulary: %v %v %v", purposes, statuses, jurisdictions)
	}
	if sum.SharedDevices != shared || sum.JunkIdentifiers != junk || sum.Aliases != aliases || sum.ConsentEvents != consent {
		t.Errorf("summary disagrees with the data: %+v (shared %d, junk %d)", sum, shared, junk)
	}
	// Extra devices used signed out before signing in on them: each is a
	// profile of its own that merges into its person's.
	signedOut := 0
	for d, first := range deviceFirstSignedOut {
		if first && deviceSignedIn[d] && !signupDevices[d] {
			signedOut++
		}
	}
	if signedOut != sum.SignedOutDevices || share(signedOut, people) < 0.09 || share(signedOut, people) > 0.17 {
		t.Errorf("signed-out extra devices: %d in the data, %d in the summary, for %d people", signedOut, sum.SignedOutDevices, people)
	}
	if unordered > 5 {
		t.Errorf("%d time inversions for 5 chunks: not sorted within chunks", unordered)
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Generate(ctx, io.Discard, Options{Profiles: 100000})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

// BenchmarkGenerate writes 100k people to io.Discard on GOMAXPROCS cores.
func BenchmarkGenerate(b *testing.B) {
	b.ReportAllocs()
	var sum Summary
	for b.Loop() {
		var err error
		if sum, err = Generate(context.Background(), io.Discard, Options{Profiles: 100000, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(sum.Bytes)
	b.ReportMetric(float64(sum.Events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
