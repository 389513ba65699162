package demo

// Word lists for the demo population. Small on purpose: realism comes from
// combinations and shares, not from vocabulary.

var firstNames = []string{"Ann", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jonas",
	"Kaia", "Liam", "Maya", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Victor", "Wen", "Yara", "Zoe"}

var lastNames = []string{"Lee", "Garcia", "Smith", "Müller", "Okafor", "Rossi", "Tanaka", "Dubois", "Novak", "Silva",
	"Khan", "Johansson", "O'Brien", "Kowalski", "Nguyen", "Haddad", "Costa", "Berg", "Patel", "Moreau"}

var emailDomains = []string{"example.com", "example.org", "mail.example.net", "corp.example.io"}

var companies = []string{"Initech", "Globex", "Umbrella", "Hooli", "Vandelay Industries", "Stark Industries",
	"Acme Corp", "Wayne Enterprises", "Soylent", "Tyrell"}

type place struct {
	city, country, region string
	jurisdiction          string
}

var places = []place{
	{"San Francisco", "US", "CA", "CPRA"},
	{"Los Angeles", "US", "CA", "CCPA"},
	{"New York", "US", "NY", ""},
	{"Austin", "US", "TX", ""},
	{"London", "GB", "", "UK-GDPR"},
	{"Berlin", "DE", "", "GDPR"},
	{"Paris", "FR", "", "GDPR"},
	{"Amsterdam", "NL", "", "GDPR"},
	{"São Paulo", "BR", "", "LGPD"},
	{"Toronto", "CA", "ON", ""},
}

// plans with cumulative weights in percent: pro is 20%.
var plans = []struct {
	name string
	cum  int
}{{"free", 45}, {"starter", 70}, {"pro", 90}, {"enterprise", 100}}

// phoneFormats write a person's number, from two parts of their index: hi
// is base + (idx/10,000) mod span, lo is idx mod 10,000. Every person up to
// span × 10,000 (8M for the US formats) has a number of their own, as people
// mostly do; a pool of numbers shared by hundreds of people made every one
// of them a refused merge and split them from their anonymous browsing.
var phoneFormats = []struct {
	format     string
	base, span int
}{
	{"(415) %03d-%04d", 200, 800},
	{"+1 415-%03d-%04d", 200, 800},
	{"415.%03d.%04d", 200, 800},
	{"+44 20 %04d %04d", 0, 10000},
	{"0049 30 %04d%04d", 0, 10000},
}

type product struct {
	id, sku, name string
	cents         int64
}

var products = []product{
	{"p-1001", "TEE-BLK-M", "Loupe T-shirt", 2490},
	{"p-1002", "MUG-WHT", "Data Mug", 1290},
	{"p-1003", "HOOD-GRY-L", "Hoodie", 5990},
	{"p-1004", "CAP-NVY", "Cap", 1999},
	{"p-1005", "BAG-TOTE", "Tote Bag", 1450},
	{"p-1006", "KB-MECH", "Mechanical Keyboard", 12900},
	{"p-1007", "STK-PACK", "Sticker Pack", 399},
}

var pagePaths = []struct{ path, title string }{
	{"/", "Home"}, {"/pricing", "Pricing"}, {"/docs", "Docs"}, {"/blog/identity-resolution", "Identity resolution, explained"},
	{"/features", "Features"}, {"/signup", "Sign up"}, {"/shop", "Shop"},
}

var userAgents = []string{
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
	"Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
}

var mobileOS = []struct{ name, version, deviceType string }{
	{"iOS", "17.5.1", "ios"}, {"Android", "14", "android"},
}

var screens = []string{"Home", "Search", "Product", "Cart", "Settings"}

// Junk identifiers that SDK bugs and test traffic produce; the identity
// blocklist must catch every one of them.
var junkUserIDs = []string{"null", "undefined", "0", "-1", "anonymous"}

const (
	junkEmail       = "test@test.com"
	junkAnonymousID = "00000000-0000-0000-0000-000000000000"
)

var consentPurposes = []string{"analytics", "marketing_email", "marketing_sms", "personalization", "advertising", "sale_or_sharing"}
var consentSources = []string{"cookie_banner", "preference_center", "email_footer", "mobile_settings", "support_ticket"}
var legalBases = []string{"consent", "legitimate_interest", "contract"}
