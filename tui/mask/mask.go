// Package mask hides personal data in what the workbench shows: emails
// become a***@example.com and phones +1•••••0100 until a reveal.
package mask

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// Email masks the local part of an email, keeping its first character and
// the domain: "ann.lee@example.com" -> "a***@example.com". A value that is
// not an email is masked whole.
func Email(s string) string {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 {
		return Opaque(s)
	}
	r, _ := utf8.DecodeRuneInString(s)
	return string(r) + "***" + s[at:]
}

// Phone masks a phone number, keeping the country code and the last four
// digits behind a fixed run of bullets so the length is hidden too:
// "+15555550100" -> "+1•••••0100". Without a leading "+", only the last
// four digits stay.
func Phone(s string) string {
	var digits []byte
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			digits = append(digits, s[i])
		}
	}
	if len(digits) < 6 {
		return Opaque(s)
	}
	last := string(digits[len(digits)-4:])
	if !strings.HasPrefix(strings.TrimSpace(s), "+") {
		return "•••••" + last
	}
	cc := countryCode(digits[:len(digits)-4])
	return "+" + cc + "•••••" + last
}

// Opaque masks a value entirely.
func Opaque(s string) string {
	if s == "" {
		return ""
	}
	return "•••••"
}

// countryCode picks the E.164 country code from the leading digits: one
// digit for zones 1 and 7, three for the zones that use three, else two.
func countryCode(d []byte) string {
	if len(d) == 0 {
		return ""
	}
	switch d[0] {
	case '1', '7':
		return string(d[:1])
	}
	if len(d) < 3 {
		return string(d)
	}
	switch string(d[:2]) {
	case "21", "22", "23", "24", "25", "26", "29", "35", "37", "38", "42",
		"50", "59", "67", "68", "69", "80", "85", "87", "88", "96", "97", "99":
		return string(d[:3])
	}
	return string(d[:2])
}

// Value masks v when the identifier type or trait name says it is personal
// ("email", "phone"), or when it looks like an email.
func Value(kind, v string) string {
	k := strings.ToLower(kind)
	switch {
	case strings.Contains(k, "email"):
		return Email(v)
	case strings.Contains(k, "phone"):
		return Phone(v)
	case emailRe.MatchString(v):
		return emailRe.ReplaceAllStringFunc(v, Email)
	}
	return v
}

var (
	emailRe     = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`)
	phoneJSONRe = regexp.MustCompile(`("[A-Za-z_]*[Pp]hone[A-Za-z_]*"\s*:\s*")([^"]*)(")`)
	e164Re      = regexp.MustCompile(`\+[0-9][0-9 ()\-]{6,18}[0-9]`)
)

// Text masks every email and phone number found in free text such as an
// event's JSON: emails anywhere, values of keys named like "phone", and
// E.164-looking numbers.
func Text(s string) string {
	s = emailRe.ReplaceAllStringFunc(s, Email)
	s = phoneJSONRe.ReplaceAllStringFunc(s, func(m string) string {
		p := phoneJSONRe.FindStringSubmatch(m)
		return p[1] + Phone(p[2]) + p[3]
	})
	return e164Re.ReplaceAllStringFunc(s, Phone)
}
