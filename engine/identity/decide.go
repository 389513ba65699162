package identity

import (
	"fmt"
	"slices"
)

// Owner tells, for an identifier, which profile holds it (0 for none) and,
// for a profile, how many identifiers of a type it holds.
type Owner interface {
	OwnerOf(id ID) uint64
	CountOf(pid uint64, typ string) int
}

// Decision is what one event does to the identity graph.
type Decision struct {
	// Kept are the identifiers the event attaches with, highest priority
	// first.
	Kept []ID
	// Owners holds, for each of Kept, the profile that held it when the
	// decision was made (0 for a new identifier).
	Owners []uint64
	// Profiles are the distinct existing profiles the kept identifiers point
	// at; more than one means they merge.
	Profiles []uint64
	// Dropped are identifiers removed to respect limits, in drop order.
	Dropped []ID
	// Reason names the limit that forced the drops, empty when none.
	Reason string
}

// Decide works out which profiles an event with identifiers ids joins. ids
// must be normalised, free of blocked values and of duplicates.
func (r *Rules) Decide(ids []ID, g Owner) Decision {
	kept := slices.Clone(ids)
	r.SortByPriority(kept)
	owners := make([]uint64, len(kept))
	for i, id := range kept {
		owners[i] = g.OwnerOf(id)
	}
	var d Decision
	for {
		profiles, broken := r.check(kept, owners[:len(kept)], g)
		if broken == "" || len(kept) <= 1 {
			d.Kept, d.Owners, d.Profiles = kept, owners[:len(kept)], profiles
			return d
		}
		if d.Reason == "" {
			d.Reason = broken
		}
		d.Dropped = append(d.Dropped, kept[len(kept)-1])
		kept = kept[:len(kept)-1]
	}
}

// check returns the distinct owners of ids and the first limit their union
// (with the new identifiers) would break.
func (r *Rules) check(ids []ID, owners []uint64, g Owner) (profiles []uint64, broken string) {
	for _, p := range owners {
		if p != 0 && !slices.Contains(profiles, p) {
			profiles = append(profiles, p)
		}
	}
	slices.Sort(profiles)
	for _, t := range r.Types {
		if t.Limit == 0 {
			continue
		}
		n := 0
		for i, id := range ids {
			if owners[i] == 0 && id.Type == t.Type {
				n++
			}
		}
		for _, p := range profiles {
			n += g.CountOf(p, t.Type)
		}
		if n > t.Limit {
			if len(profiles) > 1 {
				return profiles, fmt.Sprintf("%s limit %d: joining %d profiles would hold %d", t.Type, t.Limit, len(profiles), n)
			}
			return profiles, fmt.Sprintf("%s limit %d: the profile would hold %d", t.Type, t.Limit, n)
		}
	}
	return profiles, ""
}
