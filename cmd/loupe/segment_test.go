package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func segmentDataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if code, _, stderr := runCLI(t, "", "--data", dir, "ingest", "../../testdata/segment-basic.ndjson"); code != ExitOK && code != ExitRejected {
		t.Fatalf("ingest: exit %d: %s", code, stderr)
	}
	return dir
}

func TestSegmentPreviewCLI(t *testing.T) {
	dir := segmentDataDir(t)
	code, out, stderr := runCLI(t, "", "--data", dir, "segment", "preview", `has_event("Order Completed")`, "--purpose", "marketing_email", "--sample", "5", "--json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, k := range []string{"count", "total", "percent", "eligible", "excluded_no_consent", "sample", "elapsed_ms", "suppressed", "plan", "errors"} {
		if _, ok := got[k]; !ok {
			t.Errorf("preview JSON lacks %q: %s", k, out)
		}
	}
	sample, _ := got["sample"].([]any)
	if got["count"] != 2.0 || len(sample) != 2 {
		t.Fatalf("count %v, sample %v", got["count"], sample)
	}
	first, _ := sample[0].(map[string]any)
	if first["id"] == nil || first["user_id"] == nil || first["email"] == nil {
		t.Errorf("sample row %v", first)
	}

	code, _, stderr = runCLI(t, "", "--data", dir, "segment", "preview", `traits.plan == "pro" && evnt_count("Order Completed") > 1`)
	if code != ExitUsage {
		t.Fatalf("bad rule: exit %d, want 2", code)
	}
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "1:24") || !strings.Contains(lines[0], "did you mean event_count") {
		t.Fatalf("stderr:\n%s", stderr)
	}
	if lines[1] != `traits.plan == "pro" && evnt_count("Order Completed") > 1` || lines[2] != strings.Repeat(" ", 24)+"^" {
		t.Fatalf("caret:\n%s", stderr)
	}
	if code, _, _ := runCLI(t, "", "--data", dir, "segment", "preview", "true", "--sample", "x"); code != ExitUsage {
		t.Fatalf("bad flag: exit %d", code)
	}
}

func TestSegmentLifecycleCLI(t *testing.T) {
	dir := segmentDataDir(t)
	cli := func(want int, args ...string) string {
		t.Helper()
		code, out, stderr := runCLI(t, "", append([]string{"--data", dir}, args...)...)
		if code != want {
			t.Fatalf("%v: exit %d, want %d\n%s%s", args, code, want, out, stderr)
		}
		return out + stderr
	}
	cli(ExitUsage, "segment", "save", "buyers", `true`, "--purpose", "email_marketing")
	cli(ExitOK, "segment", "save", "buyers", `has_event("Order Completed")`, "--purpose", "marketing_email", "--description", "ordered")
	cli(ExitOK, "segment", "save", "buyers", `event_count("Order Completed") >= 1`, "--purpose", "marketing_email")
	cli(ExitOK, "segment", "save", "pro", `traits.plan == "pro"`)
	cli(ExitUsage, "segment", "save", "bad", `traits.plan ==`)

	var hist []map[string]any
	if err := json.Unmarshal([]byte(cli(ExitOK, "segment", "history", "buyers", "--json")), &hist); err != nil || len(hist) != 2 || hist[1]["version"] != 2.0 || hist[0]["author"] == "" {
		t.Fatalf("history %v %v", hist, err)
	}
	var show map[string]any
	if err := json.Unmarshal([]byte(cli(ExitOK, "segment", "show", "buyers", "--json")), &show); err != nil || show["count"] != 2.0 || show["version"] != 2.0 {
		t.Fatalf("show %v %v", show, err)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(cli(ExitOK, "segment", "list", "--json")), &list); err != nil || len(list) != 2 {
		t.Fatalf("list %v %v", list, err)
	}
	var members map[string]any
	if err := json.Unmarshal([]byte(cli(ExitOK, "segment", "members", "buyers", "--limit", "1", "--json")), &members); err != nil || members["count"] != 2.0 || len(members["members"].([]any)) != 1 {
		t.Fatalf("members %v %v", members, err)
	}
	var ov map[string]any
	if err := json.Unmarshal([]byte(cli(ExitOK, "segment", "overlap", "buyers", "pro", "--json")), &ov); err != nil || ov["both"] != 1.0 || ov["only_a"] != 1.0 || ov["only_b"] != 0.0 {
		t.Fatalf("overlap %v %v", ov, err)
	}
	cli(ExitNotFound, "segment", "show", "nope")

	// Ben grants marketing email; Ann withdrew it: only Ben is exported.
	cli(ExitOK, "consent", "set", "user_id:user-ben", "marketing_email", "granted", "--basis", "consent", "--jurisdiction", "GDPR", "--source", "form", "--policy", "v3")
	out := filepath.Join(t.TempDir(), "buyers.csv")
	report := cli(ExitOK, "segment", "export", "buyers", "--format", "csv", "-o", out, "--columns", "email,user_id,trait.plan")
	if !strings.Contains(report, "exported 1 profiles") || !strings.Contains(report, "suppressed for lack of consent (marketing_email): 1") {
		t.Fatalf("export report: %s", report)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 2 || lines[0] != "email,user_id,trait.plan" || !strings.Contains(lines[1], "user-ben") {
		t.Fatalf("csv:\n%s", b)
	}
	cli(ExitUsage, "segment", "export", "buyers", "--format", "xml", "-o", out)
	cli(ExitUsage, "segment", "export", "buyers", "--format", "csv", "-o", out, "--columns", "bogus")

	cli(ExitOK, "segment", "delete", "pro")
	cli(ExitNotFound, "segment", "members", "pro")

	var cat []map[string]any
	if err := json.Unmarshal([]byte(cli(ExitOK, "rules", "help", "--json")), &cat); err != nil || len(cat) < 10 || cat[0]["example"] == "" {
		t.Fatalf("rules help %v %v", cat, err)
	}
	var traits []map[string]any
	if err := json.Unmarshal([]byte(cli(ExitOK, "rules", "traits", "--json")), &traits); err != nil || len(traits) == 0 {
		t.Fatalf("rules traits %v %v", traits, err)
	}
	if txt := cli(ExitOK, "rules", "traits"); !strings.Contains(txt, "plan") {
		t.Fatalf("rules traits:\n%s", txt)
	}
}
