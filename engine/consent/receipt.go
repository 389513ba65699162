package consent

import (
	"crypto/sha256"
	"fmt"
	"time"
)

// Receipt is a consent receipt shaped after the Kantara Initiative Consent
// Receipt Specification v1.1, with Loupe's evidence (the records and their
// hashes) in an extension field.
type Receipt struct {
	Version          string          `json:"version"`
	Jurisdiction     string          `json:"jurisdiction"`
	ConsentTimestamp int64           `json:"consentTimestamp"` // Unix seconds of the newest decision included
	CollectionMethod string          `json:"collectionMethod"`
	ConsentReceiptID string          `json:"consentReceiptID"`
	PublicKey        string          `json:"publicKey,omitempty"`
	Language         string          `json:"language"`
	PIIPrincipalID   string          `json:"piiPrincipalId"`
	PIIControllers   []PIIController `json:"piiControllers"`
	PolicyURL        string          `json:"policyUrl"`
	Services         []Service       `json:"services"`
	Sensitive        bool            `json:"sensitive"`
	SPICat           []string        `json:"spiCat"`
	Evidence         ReceiptEvidence `json:"loupe"`
}

// PIIController is a receipt's data controller.
type PIIController struct {
	PIIController string `json:"piiController"`
	OnBehalf      bool   `json:"onBehalf"`
	Contact       string `json:"contact"`
	Address       string `json:"address"`
	Email         string `json:"email"`
	Phone         string `json:"phone"`
	URL           string `json:"piiControllerUrl,omitempty"`
}

// Service groups purposes.
type Service struct {
	Service  string           `json:"service"`
	Purposes []ReceiptPurpose `json:"purposes"`
}

// ReceiptPurpose is one purpose of a receipt.
type ReceiptPurpose struct {
	Purpose              string   `json:"purpose"`
	PurposeCategory      []string `json:"purposeCategory"`
	ConsentType          string   `json:"consentType"` // EXPLICIT or IMPLICIT (a jurisdiction default)
	PIICategory          []string `json:"piiCategory"`
	PrimaryPurpose       bool     `json:"primaryPurpose"`
	Termination          string   `json:"termination"`
	ThirdPartyDisclosure bool     `json:"thirdPartyDisclosure"`
	ThirdPartyName       string   `json:"thirdPartyName,omitempty"`
	// Loupe additions: the status in force and the record that set it.
	Status        string `json:"status"`
	SourceRecord  string `json:"sourceRecord,omitempty"`
	PolicyVersion string `json:"policyVersion,omitempty"`
	LegalBasis    string `json:"legalBasis,omitempty"`
}

// ReceiptEvidence is the trail behind a receipt.
type ReceiptEvidence struct {
	Profile     string          `json:"profile"`
	GeneratedAt time.Time       `json:"generatedAt"`
	Records     []ReceiptRecord `json:"records"`
}

// ReceiptRecord is one record of the trail with its chain hashes.
type ReceiptRecord struct {
	ID           string    `json:"id"`
	Purpose      string    `json:"purpose"`
	Status       string    `json:"status"`
	LegalBasis   string    `json:"legalBasis"`
	Jurisdiction string    `json:"jurisdiction,omitempty"`
	Source       string    `json:"source"`
	Policy       string    `json:"policyVersion,omitempty"`
	Evidence     string    `json:"evidence,omitempty"`
	IPHash       string    `json:"ipHash,omitempty"`
	DecidedAt    time.Time `json:"decidedAt"`
	RecordedAt   time.Time `json:"recordedAt"`
	Hash         string    `json:"hash"`
	Prev         string    `json:"prev,omitempty"`
}

// BuildReceipt makes the receipt of a profile's trail (recs with their
// hashes; purpose "" for all purposes) as of now.
func (c *Config) BuildReceipt(profile string, recs []*Record, hashes map[uint64]Hash, purpose string, now time.Time) Receipt {
	SortTrail(recs)
	state := c.StateAt(recs, now, "")
	jur := c.ProfileJurisdiction(recs, now)
	r := Receipt{
		Version:          "KI-CR-v1.1.0",
		Jurisdiction:     jur,
		CollectionMethod: "",
		Language:         "en",
		PIIPrincipalID:   profile,
		PIIControllers: []PIIController{{
			PIIController: c.Controller.Name, Contact: c.Controller.Contact, Address: c.Controller.Address,
			Email: c.Controller.Email, URL: c.Controller.PolicyURL,
		}},
		PolicyURL: c.Controller.PolicyURL,
		SPICat:    []string{},
		Evidence:  ReceiptEvidence{Profile: profile, GeneratedAt: now.UTC(), Records: []ReceiptRecord{}},
	}
	svc := Service{Service: c.Controller.Name, Purposes: []ReceiptPurpose{}}
	if svc.Service == "" {
		svc.Service = "customer data"
	}
	methods := map[string]bool{}
	var newest int64
	idh := sha256.New()
	fmt.Fprintf(idh, "%s\x00%s\x00", profile, purpose)
	for _, rec := range recs {
		if purpose != "" && rec.Purpose != purpose {
			continue
		}
		h := hashes[rec.Seq]
		idh.Write(h[:])
		newest = max(newest, rec.DecidedAt)
		methods[rec.Source] = true
		r.Evidence.Records = append(r.Evidence.Records, ReceiptRecord{
			ID: RecordID(rec.Seq), Purpose: rec.Purpose, Status: rec.Status, LegalBasis: rec.LegalBasis,
			Jurisdiction: rec.Jurisdiction, Source: rec.Source, Policy: rec.Policy, Evidence: rec.Evidence, IPHash: rec.IPHash,
			DecidedAt: time.Unix(0, rec.DecidedAt).UTC(), RecordedAt: time.Unix(0, rec.RecordedAt).UTC(),
			Hash: h.String(), Prev: rec.Prev,
		})
	}
	for _, p := range c.Purposes {
		if purpose != "" && p != purpose {
			continue
		}
		d := state[p]
		ct := "EXPLICIT"
		if d.Default {
			ct = "IMPLICIT"
		}
		svc.Purposes = append(svc.Purposes, ReceiptPurpose{
			Purpose: p, PurposeCategory: []string{p}, ConsentType: ct, PIICategory: []string{},
			PrimaryPurpose: false, Termination: "until withdrawn", Status: d.Status, SourceRecord: d.SourceRecord,
			PolicyVersion: d.Policy, LegalBasis: d.LegalBasis,
		})
	}
	r.Services = []Service{svc}
	for _, s := range Sources {
		if methods[s] {
			if r.CollectionMethod != "" {
				r.CollectionMethod += ", "
			}
			r.CollectionMethod += s
			delete(methods, s)
		}
	}
	for s := range methods {
		if r.CollectionMethod != "" {
			r.CollectionMethod += ", "
		}
		r.CollectionMethod += s
	}
	if r.CollectionMethod == "" {
		r.CollectionMethod = "none recorded"
	}
	if newest != 0 {
		r.ConsentTimestamp = newest / int64(time.Second)
	}
	sum := idh.Sum(nil)
	// A UUID (version 5 layout) derived from the trail: the same trail gives
	// the same receipt id.
	sum[6] = sum[6]&0x0f | 0x50
	sum[8] = sum[8]&0x3f | 0x80
	r.ConsentReceiptID = fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
	return r
}
