package demo

import (
	"strconv"
	"time"
)

// person writes one identified person's story: anonymous browsing, sign-up,
// then activity on one to three devices until the end of the window.
func (g *chunkGen) person(idx int) {
	p := g.newPerson(idx)
	web := g.newDevice(false)
	if g.nextShared != nil {
		web, g.nextShared = *g.nextShared, nil // a family member's laptop
	} else if idx%ChunkPeople < g.people-1 && g.pct(pctSharedDevice) {
		d := web
		g.nextShared = &d
		g.sum.SharedDevices++
	}
	p.devices = append(p.devices, web)

	t := g.between(g.start, g.now.Add(-10*24*time.Hour)).Truncate(time.Millisecond)
	for range 1 + g.rng.IntN(2) {
		g.page(p, &p.devices[0], t, false)
		t = g.after(t, 20*time.Minute)
	}
	signup := t
	g.identify(p, p.devices[0].anonID, t, p.email, false)
	if g.pct(pctAlias) {
		t = g.after(t, 2*time.Second)
		g.begin(tAlias, t, p.userID, "")
		g.e.str("previousId", p.devices[0].anonID)
		g.end()
		g.sum.Aliases++
	}
	if g.pct(pctMultiDevice) {
		g.sum.MultiDevicePeople++
		p.devices = append(p.devices, g.newDevice(true))
		if g.pct(pctThirdDevice) {
			p.devices = append(p.devices, g.newDevice(false))
		}
	}

	// Browsing and shopping after sign-up.
	for range g.rng.IntN(3) {
		t = g.after(t, 10*24*time.Hour)
		d := &p.devices[g.rng.IntN(len(p.devices))]
		if d.mobile {
			g.screen(p, d, t, true)
			continue
		}
		g.page(p, d, t, true)
		if p.hasPrefs && g.pct(pctPrefsChange) {
			p.prefs[1] = !p.prefs[1] // changed their mind about advertising
			p.prefs[2] = g.pct(50)
		}
		g.product(p, d, t.Add(30*time.Second), "Product Viewed")
		if g.pct(50) {
			g.product(p, d, t.Add(90*time.Second), "Product Added")
		}
	}
	for i := 1; i < len(p.devices); i++ {
		d := &p.devices[i]
		if g.pct(pctAnonDevice) {
			// Used signed out before the sign-up: the device gets a profile
			// of its own, which merges into the person's when they sign in
			// on it.
			ts := g.between(g.start, signup).Truncate(time.Millisecond)
			if d.mobile {
				g.screen(p, d, ts, false)
			} else {
				g.page(p, d, ts, false)
			}
			g.sum.SignedOutDevices++
		}
		for range 1 + g.rng.IntN(2) {
			ts := g.between(signup, g.now).Truncate(time.Millisecond)
			if d.mobile {
				g.screen(p, d, ts, true)
			} else {
				g.page(p, d, ts, true)
			}
		}
	}
	if g.pct(pctBuyers) {
		n, from := 1+g.rng.IntN(2), signup
		if g.pct(pctRepeat30d) {
			n, from = 2+g.rng.IntN(2), g.now.Add(-29*24*time.Hour)
			if signup.After(from) {
				from = signup
			}
			g.sum.RepeatBuyers30d++
		}
		for j := range n {
			g.order(p, g.between(from, g.now).Truncate(time.Millisecond), idx, j)
		}
	}
	if g.pct(pctEmail) {
		ts := g.between(signup, g.now).Truncate(time.Millisecond)
		g.emailEvent(p, ts, "Email Opened")
		if g.pct(40) {
			g.emailEvent(p, g.after(ts, time.Hour), "Email Clicked")
		}
	}
	if g.pct(pctConsent) {
		for range 1 + g.rng.IntN(2) {
			g.consent(p, g.between(signup, g.now).Truncate(time.Millisecond))
		}
	}
	if g.pct(pctJunk) {
		g.junk(p, g.between(signup, g.now).Truncate(time.Millisecond))
	}
}

// anonymousVisitor browses a few pages and never signs up.
func (g *chunkGen) anonymousVisitor() {
	g.sum.AnonymousVisitors++
	p := &person{place: places[g.rng.IntN(len(places))]}
	d := g.newDevice(false)
	t := g.between(g.start, g.now).Truncate(time.Millisecond)
	for range 1 + g.rng.IntN(3) {
		g.page(p, &d, t, false)
		t = g.after(t, 15*time.Minute)
	}
}

func (g *chunkGen) webContext(p *person, d *device, path, title string) {
	e := &g.e
	e.obj("context")
	e.str("ip", d.ip)
	e.str("userAgent", d.ua)
	e.str("locale", "en-US")
	e.obj("library")
	e.str("name", "analytics.js")
	e.str("version", "next-1.70.0")
	e.close()
	e.obj("device")
	e.str("id", d.deviceID)
	e.close()
	e.obj("page")
	e.str("path", path)
	e.str("title", title)
	e.str("url", "https://shop.example.com"+path)
	e.str("referrer", "https://www.google.com/")
	e.close()
	if p.hasPrefs {
		e.obj("consent")
		e.obj("categoryPreferences")
		e.bool("Analytics", p.prefs[0])
		e.bool("Advertising", p.prefs[1])
		e.bool("Marketing", p.prefs[2])
		e.bool("Functional", p.prefs[3])
		e.close()
		e.close()
	}
	if p.gpc {
		e.bool("gpc", true)
	}
	e.close()
}

func (g *chunkGen) page(p *person, d *device, t time.Time, signedIn bool) {
	pg := pagePaths[g.rng.IntN(len(pagePaths))]
	userID := ""
	if signedIn {
		userID = p.userID
	}
	g.begin(tPage, t, userID, d.anonID)
	g.e.str("name", pg.title)
	g.e.obj("properties")
	g.e.str("path", pg.path)
	g.e.str("title", pg.title)
	g.e.close()
	g.webContext(p, d, pg.path, pg.title)
	g.end()
}

func (g *chunkGen) identify(p *person, anonID string, t time.Time, email string, junk bool) {
	g.begin(tIdentify, t, p.userID, anonID)
	e := &g.e
	e.obj("traits")
	e.str("email", email)
	e.str("name", p.first+" "+p.last)
	e.str("first_name", p.first)
	e.str("last_name", p.last)
	e.str("plan", p.plan)
	e.str("company", p.company)
	e.str("city", p.place.city)
	e.str("country", p.place.country)
	if p.phone != "" {
		e.str("phone", p.phone)
	}
	if !junk {
		e.time("created_at", t)
	}
	e.close()
	g.webContext(p, &p.devices[0], "/signup", "Sign up")
	g.end()
}

func (g *chunkGen) screen(p *person, d *device, t time.Time, signedIn bool) {
	os := mobileOS[d.os]
	userID := ""
	if signedIn {
		userID = p.userID
	}
	g.begin(tScreen, t, userID, d.anonID)
	e := &g.e
	e.str("name", screens[g.rng.IntN(len(screens))])
	e.obj("properties")
	e.str("source", "app")
	e.close()
	e.obj("context")
	e.obj("app")
	e.str("name", "Loupe Shop")
	e.str("version", "4.2.0")
	e.close()
	e.obj("device")
	e.str("id", d.deviceID)
	e.str("type", os.deviceType)
	e.close()
	e.obj("os")
	e.str("name", os.name)
	e.str("version", os.version)
	e.close()
	e.obj("library")
	e.str("name", "analytics-"+os.deviceType)
	e.str("version", "1.5.0")
	e.close()
	e.close()
	g.end()
}

func (g *chunkGen) product(p *person, d *device, t time.Time, event string) {
	pr := products[g.rng.IntN(len(products))]
	g.begin(tTrack, t, p.userID, d.anonID)
	e := &g.e
	e.str("event", event)
	e.obj("properties")
	e.str("product_id", pr.id)
	e.str("sku", pr.sku)
	e.str("name", pr.name)
	e.money("price", pr.cents)
	e.str("currency", "USD")
	e.close()
	g.webContext(p, d, "/shop/"+pr.id, pr.name)
	g.end()
}

func (g *chunkGen) order(p *person, t time.Time, idx, n int) {
	g.sum.Orders++
	d := &p.devices[0]
	g.begin(tTrack, t, p.userID, d.anonID)
	e := &g.e
	e.str("event", "Order Completed")
	e.obj("properties")
	e.str("order_id", "ord-"+strconv.Itoa(idx)+"-"+strconv.Itoa(n))
	k := 1 + g.rng.IntN(3)
	var total int64
	items := make([]product, k)
	qty := make([]int, k)
	for i := range items {
		items[i] = products[g.rng.IntN(len(products))]
		qty[i] = 1 + g.rng.IntN(2)
		total += items[i].cents * int64(qty[i])
	}
	e.money("revenue", total)
	e.str("currency", "USD")
	e.arr("products")
	for i, pr := range items {
		e.elem()
		e.str("product_id", pr.id)
		e.str("sku", pr.sku)
		e.str("name", pr.name)
		e.money("price", pr.cents)
		e.int("quantity", int64(qty[i]))
		e.close()
	}
	e.closeArr()
	e.close()
	g.webContext(p, d, "/checkout/complete", "Thank you")
	g.end()
}

// emailEvent is sent by an email tool: userId plus context.traits.email,
// no traits.
func (g *chunkGen) emailEvent(p *person, t time.Time, event string) {
	g.begin(tTrack, t, p.userID, "")
	e := &g.e
	e.str("event", event)
	e.obj("properties")
	e.str("campaign", "autumn-sale")
	e.str("email_subject", "New arrivals for you")
	e.close()
	e.obj("context")
	e.obj("traits")
	e.str("email", p.email)
	e.close()
	e.obj("library")
	e.str("name", "email-tool")
	e.str("version", "1.0")
	e.close()
	e.close()
	g.end()
}

var statuses = []string{"granted", "granted", "denied", "withdrawn"}

func (g *chunkGen) consent(p *person, t time.Time) {
	g.sum.ConsentEvents++
	jur := p.place.jurisdiction
	if jur == "" {
		jur = [...]string{"GDPR", "CCPA"}[g.rng.IntN(2)]
	}
	g.begin(tTrack, t, p.userID, p.devices[0].anonID)
	e := &g.e
	e.str("event", "Consent Updated")
	e.obj("properties")
	e.str("purpose", consentPurposes[g.rng.IntN(len(consentPurposes))])
	e.str("status", statuses[g.rng.IntN(len(statuses))])
	e.str("legal_basis", legalBases[g.rng.IntN(len(legalBases))])
	e.str("jurisdiction", jur)
	e.str("source", consentSources[g.rng.IntN(len(consentSources))])
	e.str("policy_version", "2026-03")
	e.close()
	g.webContext(p, &p.devices[0], "/privacy", "Privacy preferences")
	g.end()
}

// junk writes one message carrying an identifier the blocklist must catch.
func (g *chunkGen) junk(p *person, t time.Time) {
	g.sum.JunkIdentifiers++
	switch k := g.rng.IntN(3); k {
	case 0: // an SDK that stringified a missing user id
		bad := *p
		bad.userID = junkUserIDs[g.rng.IntN(len(junkUserIDs))]
		g.identify(&bad, p.devices[0].anonID, t, p.email, true)
	case 1: // a test sign-up
		g.identify(p, p.devices[0].anonID, t, junkEmail, true)
	default: // a broken device id generator
		d := p.devices[0]
		d.anonID = junkAnonymousID
		g.page(p, &d, t, true)
	}
}
