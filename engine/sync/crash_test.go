package sync

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loupe-cdp/loupe/engine"
)

// TestCrashChild is the child process of TestPostgresCrashResume: it syncs
// the data dir in LOUPE_CRASH_DIR and prints one line per committed page.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("LOUPE_CRASH_DIR")
	if dir == "" {
		t.Skip("child process of TestPostgresCrashResume")
	}
	eng, err := engine.Open(dir, engine.Options{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	r := &Runner{Store: eng, Progress: func(p Progress) {
		fmt.Printf("page %d ingested %d duplicates %d\n", p.Pages, p.Result.Ingested, p.Result.Duplicates)
	}}
	res, err := r.Run(context.Background(), nil)
	if err != nil || len(res) != 1 || res[0].Error != nil {
		fmt.Println("run:", err, res)
		os.Exit(3)
	}
	fmt.Printf("done fetched %d ingested %d duplicates %d\n", res[0].Fetched, res[0].Ingested, res[0].Duplicates)
	eng.Close()
}

// runChild runs the child; killAfter > 0 kills it with SIGKILL after that
// many committed pages. It returns the child's last line.
func runChild(t *testing.T, dir string, killAfter int) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(), "LOUPE_CRASH_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	pages, last := 0, ""
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "page ") {
			pages++
			if killAfter > 0 && pages == killAfter {
				cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		if strings.HasPrefix(line, "page ") || strings.HasPrefix(line, "done ") || strings.HasPrefix(line, "open:") || strings.HasPrefix(line, "run:") {
			last = line
		}
	}
	werr := cmd.Wait()
	if killAfter > 0 {
		if pages < killAfter {
			t.Fatalf("child finished before the kill (%d pages): %s", pages, last)
		}
		return last
	}
	if werr != nil {
		t.Fatalf("child: %v (%s)", werr, last)
	}
	return last
}

// storeContents lists, per user, the messageIds of the user's events
// through the engine API, plus the store's event count.
func storeContents(t *testing.T, dir string, users int) (map[string][]string, int64) {
	t.Helper()
	eng, err := engine.Open(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ctx := context.Background()
	out := map[string][]string{}
	for u := 0; u < users; u++ {
		ref := fmt.Sprintf("user_id:u%d", u)
		var ids []string
		cursor := ""
		for {
			p, err := eng.Events(ctx, ref, cursor, 500)
			if err != nil {
				t.Fatalf("%s: %v", ref, err)
			}
			for _, e := range p.Events {
				ids = append(ids, e.MessageID)
			}
			if p.Next == "" {
				break
			}
			cursor = p.Next
		}
		slices.Sort(ids)
		out[ref] = ids
	}
	st, err := eng.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return out, st.Events
}

// A sync killed with SIGKILL mid-run and restarted ends with the same store
// as a clean run: no event lost, none doubled.
func TestPostgresCrashResume(t *testing.T) {
	_, schema, conn := pgTest(t)
	const rows, users = 6000, 150
	pgExec(t, conn, `CREATE TABLE `+schema+`.orders (id bigint PRIMARY KEY, customer text, total numeric(10,2), updated_at timestamptz NOT NULL)`)
	pgExec(t, conn, `INSERT INTO `+schema+`.orders
		SELECT g, 'u' || (g % $1), g * 1.25, timestamptz '2026-03-01 00:00:00+00' + ((g / 7) * interval '1 second')
		FROM generate_series(1, $2) g`, users, rows) // 7 rows share each timestamp
	src := `
sources:
  - name: orders
    kind: postgres
    postgres:
      dsn: ${LOUPE_TEST_POSTGRES}
      table: ` + schema + `.orders
      cursor: updated_at
      id: id
      page_size: 97
    mapping:
      user_id: customer
      event_name: Order Completed
      properties: {total: total, order_id: id}
`
	crashDir, cleanDir := t.TempDir(), t.TempDir()
	for _, d := range []string{crashDir, cleanDir} {
		writeSources(t, d, src)
	}
	for _, k := range []int{3, 9, 4, 15} {
		t.Logf("killed after page %d: %s", k, runChild(t, crashDir, k))
	}
	t.Logf("final: %s", runChild(t, crashDir, 0))
	if last := runChild(t, crashDir, 0); !strings.Contains(last, "fetched 0 ingested 0") {
		t.Errorf("a run with nothing new did something: %s", last)
	}
	// the clean run, in process
	eng, err := engine.Open(cleanDir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&Runner{Store: eng}).Run(context.Background(), nil)
	eng.Close()
	if err != nil || res[0].Error != nil || res[0].Ingested != rows {
		t.Fatalf("clean run %+v %v", res, err)
	}
	crash, nCrash := storeContents(t, crashDir, users)
	clean, nClean := storeContents(t, cleanDir, users)
	if nCrash != rows || nClean != rows {
		t.Fatalf("events: crashed %d, clean %d, want %d", nCrash, nClean, rows)
	}
	total := 0
	for ref, ids := range clean {
		if !slices.Equal(ids, crash[ref]) {
			t.Fatalf("%s: crashed store has %d events, clean %d", ref, len(crash[ref]), len(ids))
		}
		total += len(ids)
	}
	if total != rows {
		t.Fatalf("events by user %d, want %d", total, rows)
	}
	_ = time.Second
}
