package sync

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	lsync "github.com/loupe-cdp/loupe/engine/sync"
	"github.com/loupe-cdp/loupe/tui/common"
)

// Messages carry the generation of the request or run that produced them.
type (
	statusMsg struct {
		gen     uint64
		sources []lsync.SourceStatus
		missing bool // no sources.yaml in the data dir
		err     error
	}
	// progressMsg is one (coalesced) progress report of run; ch is where
	// the next one comes from.
	progressMsg struct {
		run uint64
		p   lsync.Progress
		ch  <-chan lsync.Progress
	}
	doneMsg struct {
		run     uint64
		results []lsync.Result
		pages   map[string]int // committed pages by source
		err     error
	}
)

// loadStatus reads every declared source's status through the engine.
func loadStatus(ctx context.Context, b common.Backend, gen uint64, now func() time.Time) tea.Cmd {
	return func() tea.Msg {
		_, err := os.Stat(filepath.Join(b.Dir(), lsync.SourcesFile))
		if errors.Is(err, os.ErrNotExist) {
			return statusMsg{gen: gen, missing: true}
		}
		ss, err := lsync.Status(ctx, b, b.Dir(), now)
		return statusMsg{gen: gen, sources: ss, err: err}
	}
}

// runSync runs the named sources once and reports their results. Progress
// goes to ch, coalesced: the runner never waits for the UI, and a report
// the UI has not taken yet is replaced by the newer one. ch is closed when
// the run ends, which ends waitProgress.
// over is closed when the runner has returned (Model.Wait).
func runSync(ctx context.Context, b common.Backend, run uint64, names []string, now func() time.Time, ch chan lsync.Progress, over chan struct{}) tea.Cmd {
	return func() tea.Msg {
		defer close(over)
		defer close(ch)
		pages := map[string]int{}
		r := &lsync.Runner{Store: b, Now: now, Progress: func(p lsync.Progress) {
			// Called only from this goroutine: the one sender.
			pages[p.Result.Source] = p.Pages
			select {
			case ch <- p:
				return
			default:
			}
			select {
			case <-ch: // drop the stale report
			default:
			}
			select {
			case ch <- p:
			default:
			}
		}}
		res, err := r.Run(ctx, names)
		return doneMsg{run: run, results: res, pages: pages, err: err}
	}
}

// waitProgress waits for the next progress report of run. The model
// re-arms it after each report; it ends (nil) when the run closes ch.
func waitProgress(run uint64, ch <-chan lsync.Progress) tea.Cmd {
	return func() tea.Msg {
		p, ok := <-ch
		if !ok {
			return nil
		}
		return progressMsg{run: run, p: p, ch: ch}
	}
}
