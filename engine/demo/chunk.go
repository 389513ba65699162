package demo

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Shares of the population, in percent unless noted.
const (
	pctAlias        = 30
	pctMultiDevice  = 20
	pctThirdDevice  = 30 // of multi-device people
	pctAnonDevice   = 50 // of extra devices: used signed out first, so their profile merges at sign-in
	pctSharedDevice = 3  // people who start a shared family device with the next person
	pctBuyers       = 35
	pctRepeat30d    = 40 // of buyers: 2+ orders in the last 30 days
	pctEmail        = 30
	pctConsent      = 25
	pctConsentPrefs = 50
	pctPrefsChange  = 30 // of those with prefs
	pctGPC          = 40 // of Californians
	pctJunk         = 4
	pctPhone        = 40
	pctOddEmail     = 5
	pctSentAt       = 50
	permilleNoMsgID = 20 // per mille of messages without messageId
	anonPerPeople   = 4  // one anonymous-only visitor per this many people
)

type device struct {
	anonID, deviceID string
	mobile           bool
	ua, ip           string
	os               int
}

type person struct {
	userID      string
	first, last string
	email       string // as sent, sometimes with odd case and spaces
	phone       string
	place       place
	plan        string
	company     string
	devices     []device
	prefs       [4]bool // Analytics, Advertising, Marketing, Functional
	hasPrefs    bool
	gpc         bool
}

type evRef struct {
	ts         int64
	seq        int32
	start, end int32
}

// chunkGen generates one chunk: its people, their events, sorted by time.
type chunkGen struct {
	rng        *rand.Rand
	chunk      int
	people     int
	now, start time.Time
	e          enc
	evs        []evRef
	cur        evRef
	out        []byte
	sum        Summary
	typeCounts [6]int
	nextShared *device // family device handed from one person to the next
}

var typeNames = [6]string{"identify", "track", "page", "screen", "group", "alias"}

const (
	tIdentify = iota
	tTrack
	tPage
	tScreen
	tGroup
	tAlias
)

func newChunkGen(seed int64, chunk, people int, now time.Time) *chunkGen {
	return &chunkGen{
		rng:    rand.New(rand.NewPCG(uint64(seed), uint64(chunk)^0x9e3779b97f4a7c15)),
		chunk:  chunk,
		people: people,
		now:    now,
		start:  now.Add(-Window),
		e:      enc{b: getBuf()[:0]},
		evs:    make([]evRef, 0, people*9),
	}
}

// bufPool recycles the chunk buffers (several MB each): allocating and
// zeroing them per chunk cost more than filling them.
var bufPool sync.Pool

func getBuf() []byte {
	if b, ok := bufPool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 0, ChunkPeople*8*800)
}

func putBuf(b []byte) { bufPool.Put(&b) }

func (g *chunkGen) pct(p int) bool { return g.rng.IntN(100) < p }

func (g *chunkGen) run() {
	for i := range g.people {
		g.person(g.chunk*ChunkPeople + i)
	}
	for range g.people / anonPerPeople {
		g.anonymousVisitor()
	}
	slices.SortFunc(g.evs, func(a, b evRef) int {
		if a.ts != b.ts {
			if a.ts < b.ts {
				return -1
			}
			return 1
		}
		return int(a.seq - b.seq)
	})
	g.out = getBuf()[:0]
	for _, r := range g.evs {
		g.out = append(g.out, g.e.b[r.start:r.end]...)
		g.out = append(g.out, '\n')
	}
	putBuf(g.e.b)
	g.e.b = nil
	g.sum.People = g.people
	g.sum.Events = len(g.evs)
	g.sum.Bytes = int64(len(g.out))
	g.sum.ByType = make(map[string]int, len(typeNames))
	for i, n := range g.typeCounts {
		if n > 0 {
			g.sum.ByType[typeNames[i]] = n
		}
	}
}

// uuid returns a random, UUID v4-shaped string from the chunk's stream.
func (g *chunkGen) uuid() string {
	var b [36]byte
	hi, lo := g.rng.Uint64(), g.rng.Uint64()
	j := 0
	for i := range 32 {
		if i == 8 || i == 12 || i == 16 || i == 20 {
			b[j] = '-'
			j++
		}
		var nib uint64
		if i < 16 {
			nib = hi >> (60 - 4*i) & 0xf
		} else {
			nib = lo >> (60 - 4*(i-16)) & 0xf
		}
		switch i {
		case 12:
			nib = 4
		case 16:
			nib = 8 | nib&3
		}
		b[j] = hexDigits[nib]
		j++
	}
	return string(b[:])
}

// between returns a random time in [a, b), clamped to the window.
func (g *chunkGen) between(a, b time.Time) time.Time {
	if !b.After(a) {
		return a
	}
	return a.Add(time.Duration(g.rng.Int64N(int64(b.Sub(a)))))
}

func (g *chunkGen) after(t time.Time, maxGap time.Duration) time.Time {
	t = t.Add(time.Second + time.Duration(g.rng.Int64N(int64(maxGap))))
	if t.After(g.now) {
		t = g.now.Add(-time.Duration(g.rng.IntN(3600)) * time.Second)
	}
	return t.Truncate(time.Millisecond)
}

// begin opens a message with its envelope fields.
func (g *chunkGen) begin(typ int, ts time.Time, userID, anonID string) {
	g.cur = evRef{ts: ts.UnixNano(), seq: int32(len(g.evs)), start: int32(len(g.e.b))}
	g.typeCounts[typ]++
	e := &g.e
	e.open()
	e.str("type", typeNames[typ])
	if g.rng.IntN(1000) < permilleNoMsgID {
		g.sum.WithoutMessageID++
	} else {
		e.str("messageId", g.uuid())
	}
	if userID != "" {
		e.str("userId", userID)
	}
	if anonID != "" {
		e.str("anonymousId", anonID)
	}
	e.time("timestamp", ts)
	if g.pct(pctSentAt) {
		sent := ts.Add(time.Duration(50+g.rng.IntN(2000)) * time.Millisecond)
		e.time("sentAt", sent)
		e.time("receivedAt", sent.Add(time.Duration(20+g.rng.IntN(300))*time.Millisecond))
	}
}

func (g *chunkGen) end() {
	g.e.close()
	g.cur.end = int32(len(g.e.b))
	g.evs = append(g.evs, g.cur)
}

func (g *chunkGen) newDevice(mobile bool) device {
	d := device{anonID: g.uuid(), deviceID: g.uuid(), mobile: mobile}
	d.ua = userAgents[g.rng.IntN(len(userAgents))]
	d.ip = "203.0." + strconv.Itoa(g.rng.IntN(256)) + "." + strconv.Itoa(1+g.rng.IntN(254))
	d.os = g.rng.IntN(len(mobileOS))
	return d
}

// emailSafe turns a name into an e-mail local part.
var emailSafe = strings.NewReplacer("ü", "ue", "ã", "a", "'", "")

func asciiLower(s string) string { return strings.ToLower(emailSafe.Replace(s)) }

func (g *chunkGen) newPerson(idx int) *person {
	p := &person{
		userID:  fmt.Sprintf("user-%07d", idx),
		first:   firstNames[g.rng.IntN(len(firstNames))],
		last:    lastNames[g.rng.IntN(len(lastNames))],
		place:   places[g.rng.IntN(len(places))],
		company: companies[g.rng.IntN(len(companies))],
	}
	domain := emailDomains[g.rng.IntN(len(emailDomains))]
	p.email = asciiLower(p.first) + "." + asciiLower(p.last) + strconv.Itoa(idx) + "@" + domain
	if g.pct(pctOddEmail) {
		// As typed on a phone: capitals and stray spaces.
		p.email = " " + p.first + "." + emailSafe.Replace(p.last) + strconv.Itoa(idx) + "@" + strings.ToUpper(domain[:1]) + domain[1:len(domain)-4] + ".COM "
	}
	if g.pct(pctPhone) {
		f := phoneFormats[g.rng.IntN(len(phoneFormats))]
		p.phone = fmt.Sprintf(f.format, f.base+idx/10000%f.span, idx%10000)
	}
	r := g.rng.IntN(100)
	for _, pl := range plans {
		if r < pl.cum {
			p.plan = pl.name
			break
		}
	}
	if g.pct(pctConsentPrefs) {
		p.hasPrefs = true
		p.prefs = [4]bool{g.pct(80), g.pct(50), g.pct(60), true}
		g.sum.ConsentPrefPeople++
	}
	if p.place.region == "CA" && p.place.country == "US" && g.pct(pctGPC) {
		p.gpc = true
		g.sum.GPCPeople++
	}
	return p
}
