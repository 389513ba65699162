package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/loupe-cdp/loupe/engine"
)

// Compliance commands: consent, dsr, audit, gc and `profile set-trait`.
func init() {
	extraCommands = append(extraCommands, newConsentCmd, newDSRCmd, newAuditCmd, newGCCmd)
	profileSubcommands = append(profileSubcommands, newSetTraitCmd)
}

func newConsentCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "consent",
		Short: "Record, inspect and verify the consent ledger",
		Long: `The consent ledger keeps every decision per purpose (granted, denied,
withdrawn) with its legal basis, jurisdiction, source, policy version and
evidence. Records are append-only and hash-chained per profile and globally.
With no record, the profile's jurisdiction decides (opt-in under GDPR-like
rules; CCPA/CPRA consent to sale_or_sharing until opted out).`,
	}
	cmd.AddCommand(newConsentSetCmd(g), newConsentAtCmd(g), newConsentHistoryCmd(g), newConsentReceiptCmd(g), newConsentVerifyCmd(g))
	return cmd
}

func newConsentSetCmd(g *globalFlags) *cobra.Command {
	var in engine.ConsentInput
	var at string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "set REF PURPOSE STATUS",
		Short: "Record a consent decision by hand (STATUS: granted, denied, withdrawn)",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			in.Purpose, in.Status = args[1], args[2]
			if at != "" {
				t, err := time.Parse(time.RFC3339, at)
				if err != nil {
					return withCode(ExitUsage, fmt.Errorf("--time: %w", err))
				}
				in.DecidedAt = t
			}
			eng, err := g.openEngine()
			if err != nil {
				return err
			}
			defer eng.Close()
			rec, err := eng.SetConsent(cmd.Context(), args[0], in)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rec)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s  %s %s %s for %s (%s, %s)\n", rec.ID, rec.Purpose, rec.Status, fmtTime(rec.DecidedAt), rec.Profile, rec.LegalBasis, rec.Source)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.LegalBasis, "basis", "consent", "legal basis: consent, contract, legal_obligation, vital_interest, public_task, legitimate_interest")
	f.StringVar(&in.Jurisdiction, "jurisdiction", "", "jurisdiction (GDPR, UK-GDPR, CCPA, CPRA, LGPD, ...)")
	f.StringVar(&in.Source, "source", "support", "where the decision came from (banner, form, api, import, support, email_footer, ...)")
	f.StringVar(&in.Policy, "policy", "", "policy version the decision refers to")
	f.StringVar(&in.Evidence, "evidence", "", "evidence: free text or ids (no personal data)")
	f.StringVar(&in.IP, "ip", "", "IP address the decision came from (stored only as a salted hash)")
	f.StringVar(&at, "time", "", "time of the decision, RFC3339 (default now)")
	f.BoolVar(&asJSON, "json", false, "print the record as JSON")
	return cmd
}

// consentAtJSON is the stable --json shape of `loupe consent at`.
type consentAtJSON struct {
	Profile      string                        `json:"profile"`
	Time         time.Time                     `json:"time"`
	Jurisdiction string                        `json:"jurisdiction"`
	Purposes     map[string]consentPurposeJSON `json:"purposes"`
}

type consentPurposeJSON struct {
	Status       string `json:"status"`
	SourceRecord string `json:"source_record"`
	Default      bool   `json:"default"`
}

func newConsentAtCmd(g *globalFlags) *cobra.Command {
	var at, jur string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "at REF [--time RFC3339]",
		Short: "Show, per purpose, the consent status in force at a time and the record that set it",
		Args:  cobra.ExactArgs(1),
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			t := time.Now().UTC()
			if at != "" {
				var err error
				if t, err = time.Parse(time.RFC3339, at); err != nil {
					return withCode(ExitUsage, fmt.Errorf("--time: %w", err))
				}
			}
			pid, st, err := eng.ConsentAt(cmd.Context(), args[0], t, jur)
			if err != nil {
				return err
			}
			out := consentAtJSON{Profile: pid, Time: t.UTC(), Purposes: map[string]consentPurposeJSON{}}
			for p, d := range st {
				out.Purposes[p] = consentPurposeJSON{Status: d.Status, SourceRecord: d.SourceRecord, Default: d.Default}
				if d.Default {
					out.Jurisdiction = d.Jurisdiction
				}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "profile %s at %s\n", pid, t.UTC().Format(time.RFC3339))
			for _, p := range sortedKeys(st) {
				d := st[p]
				src := d.SourceRecord
				if d.Default {
					src = "default (" + d.Jurisdiction + ")"
				}
				fmt.Fprintf(w, "  %-18s %-10s %s\n", p, d.Status, src)
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&at, "time", "", "the time, RFC3339 (default now)")
	cmd.Flags().StringVar(&jur, "jurisdiction", "", "judge defaults under this jurisdiction instead of the profile's")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newConsentHistoryCmd(g *globalFlags) *cobra.Command {
	var purpose string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "history REF [--purpose P]",
		Short: "List a profile's consent trail in decision-time order (merged profiles included)",
		Args:  cobra.ExactArgs(1),
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			h, err := eng.ConsentHistory(cmd.Context(), args[0], purpose)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), h)
			}
			for _, r := range h {
				fmt.Fprintf(cmd.OutOrStdout(), "%-6s %s  %-18s %-10s %-20s %-8s %-13s %s\n", r.ID, fmtTime(r.DecidedAt), r.Purpose, r.Status, r.LegalBasis, r.Jurisdiction, r.Source, r.PolicyVersion)
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&purpose, "purpose", "", "only this purpose")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newConsentReceiptCmd(g *globalFlags) *cobra.Command {
	var purpose, out string
	cmd := &cobra.Command{
		Use:   "receipt REF [--purpose P] [-o FILE]",
		Short: "Write a Kantara Consent Receipt v1.1-shaped JSON document with the evidence",
		Args:  cobra.ExactArgs(1),
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			r, err := eng.ConsentReceiptFor(cmd.Context(), args[0], purpose)
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				return printJSON(cmd.OutOrStdout(), r)
			}
			b, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				return err
			}
			return os.WriteFile(out, append(b, '\n'), 0o600)
		}),
	}
	cmd.Flags().StringVar(&purpose, "purpose", "", "only this purpose")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to FILE instead of standard output")
	return cmd
}

func newConsentVerifyCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the per-profile and global consent chains; exit 1 on any break",
		Args:  cobra.NoArgs,
		RunE: g.withEngine(func(cmd *cobra.Command, _ []string, eng *engine.Engine) error {
			res, err := eng.VerifyConsent(cmd.Context())
			if err != nil {
				return err
			}
			return reportVerify(cmd.OutOrStdout(), asJSON, res, res.OK, func(w io.Writer) {
				for _, b := range res.Breaks {
					fmt.Fprintf(w, "BREAK %-7s %-6s %-6s %s\n", b.Chain, b.Profile, b.Record, b.What)
				}
				fmt.Fprintf(w, "%d records, %d breaks\n", res.Records, len(res.Breaks))
			})
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"ok":bool,"records":N,"breaks":[...]}`)
	return cmd
}

func newDSRCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dsr",
		Short: "Data-subject requests: track, export, erase",
	}
	cmd.AddCommand(newDSROpenCmd(g), newDSRListCmd(g), newDSRCloseCmd(g), newDSREraseCmd(g), newDSRExportCmd(g), newDSRUnsuppressCmd(g))
	return cmd
}

func printDSR(cmd *cobra.Command, ds ...engine.DSR) {
	for _, d := range ds {
		flag := ""
		if d.Overdue {
			flag = "  OVERDUE"
		}
		if d.SubjectErased {
			flag += "  (subject erased)"
		}
		closed := ""
		if d.ClosedAt != nil {
			closed = "closed " + fmtTime(*d.ClosedAt) + " " + d.Outcome
			if d.Reason != "" {
				closed += ": " + d.Reason
			}
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s  %-13s %-6s %-8s via %-10s opened %s  due %s  %s %s%s\n", d.ID, d.Type, d.Profile, d.Jurisdiction, d.Channel,
			d.OpenedAt.Format("2006-01-02"), d.DueAt.Format("2006-01-02"), d.Status, closed, flag)
	}
}

func newDSROpenCmd(g *globalFlags) *cobra.Command {
	var opts engine.DSROptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "open access|erasure|rectification REF",
		Short: "Open a request with its due date (GDPR 30 days, CCPA/CPRA 45)",
		Args:  cobra.ExactArgs(2),
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			d, err := eng.OpenDSR(cmd.Context(), args[0], args[1], opts)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), d)
			}
			printDSR(cmd, d)
			return nil
		}),
	}
	cmd.Flags().StringVar(&opts.Jurisdiction, "jurisdiction", "", "jurisdiction (sets the due date; default consent.default_jurisdiction)")
	cmd.Flags().StringVar(&opts.Channel, "via", "", "how the request arrived (email, web_form, phone, mail, ...)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newDSRListCmd(g *globalFlags) *cobra.Command {
	var overdue, asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--overdue]",
		Short: "List requests, oldest first",
		Args:  cobra.NoArgs,
		RunE: g.withEngine(func(cmd *cobra.Command, _ []string, eng *engine.Engine) error {
			ds, err := eng.ListDSR(cmd.Context(), overdue)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), ds)
			}
			printDSR(cmd, ds...)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&overdue, "overdue", false, "only open requests past their due date")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newDSRCloseCmd(g *globalFlags) *cobra.Command {
	var outcome, reason string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "close ID [--outcome fulfilled|denied|partial] [--reason TEXT]",
		Short: "Close a request with its outcome (a denial needs the reason)",
		Args:  cobra.ExactArgs(1),
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			d, err := eng.CloseDSR(cmd.Context(), args[0], outcome, reason)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), d)
			}
			printDSR(cmd, d)
			return nil
		}),
	}
	cmd.Flags().StringVar(&outcome, "outcome", "fulfilled", "fulfilled, denied or partial")
	cmd.Flags().StringVar(&reason, "reason", "", "why the request was denied or partly fulfilled")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newDSREraseCmd(g *globalFlags) *cobra.Command {
	var opts engine.EraseOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "erase REF [--dry-run] [--request ID]",
		Short: "Erase a person: profile, events, identities, links, trait history, consent content; suppress re-ingest",
		Long: `Erase the person REF names. --dry-run lists exactly what would be removed,
per record kind, and the segments the person leaves, touching nothing.

The consent records become stubs that keep their hashes, so both chains still
verify. Suppression entries (salted hashes of the identifiers) make later
events with those identifiers be dropped and counted as suppressed, until
'loupe dsr unsuppress'. Run 'loupe gc' afterwards: Badger keeps deleted bytes
in its files until they are rewritten.`,
		Args: cobra.ExactArgs(1),
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			plan, err := eng.Erase(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), plan)
			}
			w := cmd.OutOrStdout()
			verb := "erased"
			if plan.DryRun {
				verb = "would erase"
			}
			fmt.Fprintf(w, "%s %s", verb, plan.Profile)
			if len(plan.MergedIDs) > 0 {
				fmt.Fprintf(w, " (merged: %s)", strings.Join(plan.MergedIDs, ", "))
			}
			fmt.Fprintln(w)
			for _, k := range sortedKeys(plan.Counts) {
				fmt.Fprintf(w, "  %-26s %d\n", k, plan.Counts[k])
			}
			switch {
			case len(plan.Segments) == 0:
				fmt.Fprintln(w, "  segments left              none")
			default:
				fmt.Fprintf(w, "  segments left              %s\n", strings.Join(plan.Segments, ", "))
			}
			if !plan.DryRun {
				fmt.Fprintln(w, "run 'loupe gc' to remove the deleted bytes from disk")
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "list what would be removed; change nothing")
	cmd.Flags().StringVar(&opts.Request, "request", "", "the erasure request this fulfils (closed on success)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newDSRExportCmd(g *globalFlags) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export REF -o FILE.json",
		Short: "Write everything held about a person as JSON (access and portability)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return withCode(ExitUsage, fmt.Errorf("export needs -o FILE.json"))
			}
			eng, err := g.openEngine()
			if err != nil {
				return err
			}
			defer eng.Close()
			ex, err := eng.WriteSubjectExport(cmd.Context(), args[0], out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s, %d identities, %d events, %d consent records\n", out, ex.Profile, len(ex.Identities), len(ex.Events), len(ex.Consent))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (mode 0600)")
	return cmd
}

func newDSRUnsuppressCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "unsuppress TYPE:VALUE|PROFILE_ID",
		Short: "Lift erasure suppression for one identifier, or every identifier of an erased profile",
		Args:  cobra.ExactArgs(1),
		RunE: g.withEngine(func(cmd *cobra.Command, args []string, eng *engine.Engine) error {
			n, err := eng.Unsuppress(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lifted %d suppression entries\n", n)
			return nil
		}),
	}
	return cmd
}

func newAuditCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit [--json]",
		Short: "Show the audit log: who did what to which profile, when",
		Args:  cobra.NoArgs,
		RunE: g.withEngine(func(cmd *cobra.Command, _ []string, eng *engine.Engine) error {
			log, err := eng.AuditLog(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), log)
			}
			for _, en := range log {
				fmt.Fprintf(cmd.OutOrStdout(), "%6d  %s  %-12s %-15s %-8s %s\n", en.Seq, fmtTime(en.Time), en.Actor, en.Action, en.Profile, en.Detail)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the audit log's hash chain; exit 1 on any break",
		Args:  cobra.NoArgs,
		RunE: g.withEngine(func(cmd *cobra.Command, _ []string, eng *engine.Engine) error {
			res, err := eng.VerifyAudit(cmd.Context())
			if err != nil {
				return err
			}
			return reportVerify(cmd.OutOrStdout(), asJSON, res, res.OK, func(w io.Writer) {
				for _, b := range res.Breaks {
					fmt.Fprintf(w, "BREAK entry %d: %s\n", b.Entry, b.What)
				}
				fmt.Fprintf(w, "%d entries, %d breaks\n", res.Entries, len(res.Breaks))
			})
		}),
	}
	verify.Flags().BoolVar(&asJSON, "json", false, `print {"ok":bool,"entries":N,"breaks":[...]}`)
	cmd.AddCommand(verify)
	return cmd
}

func newGCCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Rewrite the store with live data only, so deleted (erased) bytes leave the disk",
		Long: `Badger's Delete writes a tombstone and leaves the old bytes in its files until
a compaction happens to rewrite them. gc copies the latest live version of every
key into a fresh store, syncs it, swaps it in and removes the old files. The
data dir must not be in use.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := g.dataDir()
			if err != nil {
				return err
			}
			opts, err := g.engineOptions()
			if err != nil {
				return err
			}
			st, err := engine.GC(cmd.Context(), dir, opts)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rewrote %s: %s live keys, %s -> %s bytes\n", dir, commas(st.Keys), commas(st.BytesBefore), commas(st.BytesAfter))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newSetTraitCmd(g *globalFlags) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "set-trait REF NAME VALUE --reason TEXT",
		Short: "Rectify a trait (provenance: rectification; kept in history; audited)",
		Long: `Set trait NAME of the profile REF names to VALUE, as a rectification. VALUE is
read as JSON when it is valid JSON (42, true, null, "text", {"a":1}), else as a
string. The old value stays in the trait's history.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return withCode(ExitUsage, fmt.Errorf("set-trait needs --reason"))
			}
			var v any = args[2]
			var parsed any
			if json.Unmarshal([]byte(args[2]), &parsed) == nil {
				v = parsed
			}
			eng, err := g.openEngine()
			if err != nil {
				return err
			}
			defer eng.Close()
			if err := eng.SetTrait(cmd.Context(), args[0], args[1], v, reason); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rectified %s of %s\n", args[1], args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the value is rectified (kept with it and in the audit log)")
	return cmd
}

// reportVerify prints a chain verification (res as JSON, or text) and
// turns a broken chain into exit status 1.
func reportVerify(w io.Writer, asJSON bool, res any, ok bool, text func(io.Writer)) error {
	if asJSON {
		if err := printJSON(w, res); err != nil {
			return err
		}
	} else {
		text(w)
	}
	if !ok {
		return withCode(ExitFailure, nil)
	}
	return nil
}
