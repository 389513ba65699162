// Package demo generates a deterministic, realistic demo dataset of
// Segment-spec messages: anonymous browsing that turns into sign-ups,
// people on several devices, shared family devices, junk identifiers,
// orders, consent changes and GPC signals.
package demo

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"
)

// ChunkPeople is how many people are generated together. Events are
// time-ordered within a chunk but not across chunks, as in a real export
// assembled from several sources.
const ChunkPeople = 1000

// Window is the span of time the events cover, ending at Options.Now.
const Window = 180 * 24 * time.Hour

// DefaultNow is the end of the window when Options.Now is zero.
var DefaultNow = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// bytesPerPerson is about how much NDJSON Generate writes for each
// identified person, anonymous visitors included: 5,757,980,483 bytes for
// 1M people (seed 1).
const bytesPerPerson = 5_758

// ApproxBytes is about how many bytes Generate writes for o, within a few
// percent: what a caller that streams the output, and so cannot know its
// size, can reserve room for.
func ApproxBytes(o Options) int64 { return int64(o.Profiles) * bytesPerPerson }

// Options configures Generate.
type Options struct {
	Profiles int       // identified people to generate (anonymous-only visitors come on top)
	Seed     int64     // same Seed and Profiles => byte-identical output
	Now      time.Time // end of the window; zero means DefaultNow
}

// Summary counts what Generate wrote.
type Summary struct {
	People            int // identified people (each gets a userId)
	AnonymousVisitors int // visitors who never sign up
	MultiDevicePeople int // people seen on 2 or 3 devices
	SignedOutDevices  int // extra devices used signed out before signing in: a merge each
	SharedDevices     int // devices (and anonymousIds) shared by two people
	Aliases           int // alias messages
	JunkIdentifiers   int // messages carrying a blocklisted identifier
	Orders            int // Order Completed events
	RepeatBuyers30d   int // people with 2+ orders in the last 30 days
	ConsentEvents     int // Consent Updated events
	ConsentPrefPeople int // people whose page events carry categoryPreferences
	GPCPeople         int // people sending context.gpc = true
	WithoutMessageID  int // messages with no messageId (the engine derives one)
	Events            int
	ByType            map[string]int // identify, track, page, screen, group, alias
	Bytes             int64
	From, To          time.Time // the window
}

// String renders the summary for the `loupe demo` command.
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "events             %d (%d bytes, %s to %s)\n", s.Events, s.Bytes, s.From.Format(time.DateOnly), s.To.Format(time.DateOnly))
	types := make([]string, 0, len(s.ByType))
	for t := range s.ByType {
		types = append(types, t)
	}
	slices.Sort(types)
	for _, t := range types {
		fmt.Fprintf(&b, "  %-16s %d\n", t, s.ByType[t])
	}
	for _, row := range []struct {
		label string
		n     int
	}{
		{"people", s.People}, {"anonymous-only", s.AnonymousVisitors}, {"multi-device", s.MultiDevicePeople}, {"signed-out devices", s.SignedOutDevices},
		{"shared devices", s.SharedDevices}, {"aliases", s.Aliases}, {"junk identifiers", s.JunkIdentifiers},
		{"orders", s.Orders}, {"2+ orders in 30d", s.RepeatBuyers30d}, {"consent events", s.ConsentEvents},
		{"consent prefs", s.ConsentPrefPeople}, {"GPC people", s.GPCPeople}, {"no messageId", s.WithoutMessageID},
	} {
		fmt.Fprintf(&b, "%-18s %d\n", row.label, row.n)
	}
	return b.String()
}

func (s *Summary) add(o *Summary) {
	s.People += o.People
	s.AnonymousVisitors += o.AnonymousVisitors
	s.MultiDevicePeople += o.MultiDevicePeople
	s.SignedOutDevices += o.SignedOutDevices
	s.SharedDevices += o.SharedDevices
	s.Aliases += o.Aliases
	s.JunkIdentifiers += o.JunkIdentifiers
	s.Orders += o.Orders
	s.RepeatBuyers30d += o.RepeatBuyers30d
	s.ConsentEvents += o.ConsentEvents
	s.ConsentPrefPeople += o.ConsentPrefPeople
	s.GPCPeople += o.GPCPeople
	s.WithoutMessageID += o.WithoutMessageID
	s.Events += o.Events
	s.Bytes += o.Bytes
	for t, n := range o.ByType {
		s.ByType[t] += n
	}
}

type chunkResult struct {
	out []byte
	sum Summary
}

// Generate writes the dataset to w as NDJSON, one Segment message per line.
// Chunks of ChunkPeople people are generated in parallel, each from its own
// random stream derived from (Seed, chunk index), and written in order, so
// the output does not depend on GOMAXPROCS. It stops early with ctx's error
// when ctx is cancelled.
func Generate(ctx context.Context, w io.Writer, opts Options) (Summary, error) {
	if opts.Profiles < 0 {
		return Summary{}, fmt.Errorf("demo: negative profile count %d", opts.Profiles)
	}
	now := opts.Now
	if now.IsZero() {
		now = DefaultNow
	}
	now = now.UTC()
	sum := Summary{ByType: map[string]int{}, From: now.Add(-Window), To: now}
	chunks := (opts.Profiles + ChunkPeople - 1) / ChunkPeople
	workers := max(1, runtime.GOMAXPROCS(0))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	futures := make(chan chan chunkResult, workers)
	sem := make(chan struct{}, workers)
	go func() {
		defer close(futures)
		for i := range chunks {
			people := min(ChunkPeople, opts.Profiles-i*ChunkPeople)
			f := make(chan chunkResult, 1)
			select {
			case futures <- f:
			case <-ctx.Done():
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				defer func() { <-sem }()
				g := newChunkGen(opts.Seed, i, people, now)
				g.run()
				f <- chunkResult{out: g.out, sum: g.sum}
			}()
		}
	}()
	for f := range futures {
		var res chunkResult
		select {
		case res = <-f:
		case <-ctx.Done():
			return sum, fmt.Errorf("demo: %w", ctx.Err())
		}
		_, err := w.Write(res.out)
		putBuf(res.out)
		if err != nil {
			return sum, fmt.Errorf("demo: write: %w", err)
		}
		sum.add(&res.sum)
	}
	if err := ctx.Err(); err != nil {
		return sum, fmt.Errorf("demo: %w", err)
	}
	return sum, nil
}
