package mask

import "testing"

func TestEmail(t *testing.T) {
	for in, want := range map[string]string{
		"ann@example.com":    "a***@example.com",
		"a@example.com":      "a***@example.com",
		"Ünal.x@beispiel.de": "Ü***@beispiel.de",
		"weird@@x.org":       "w***@x.org",
		"not-an-email":       "•••••",
		"":                   "",
		"@nolocal.com":       "•••••",
	} {
		if got := Email(in); got != want {
			t.Errorf("Email(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPhone(t *testing.T) {
	for in, want := range map[string]string{
		"+15555550100":      "+1•••••0100",
		"+1 (555) 555-0100": "+1•••••0100",
		"+442079460958":     "+44•••••0958",
		"+353861234567":     "+353•••••4567",
		"+79161234567":      "+7•••••4567",
		"555-0100":          "•••••0100",
		"0100":              "•••••",
		"5555550100":        "•••••0100",
		"":                  "",
	} {
		if got := Phone(in); got != want {
			t.Errorf("Phone(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValue(t *testing.T) {
	if got := Value("email", "bob@x.io"); got != "b***@x.io" {
		t.Error(got)
	}
	if got := Value("phone", "+15555550100"); got != "+1•••••0100" {
		t.Error(got)
	}
	if got := Value("plan", "pro"); got != "pro" {
		t.Error(got)
	}
	if got := Value("contact", "write bob@x.io"); got != "write b***@x.io" {
		t.Error(got)
	}
}

func TestText(t *testing.T) {
	in := `{"traits":{"email":"ann.lee@example.com","phone":"555 0100 22","mobile":"+15555550100"},"plan":"pro"}`
	want := `{"traits":{"email":"a***@example.com","phone":"•••••0022","mobile":"+1•••••0100"},"plan":"pro"}`
	if got := Text(in); got != want {
		t.Errorf("Text:\n got %s\nwant %s", got, want)
	}
}
