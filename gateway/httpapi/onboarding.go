package httpapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/shelterwatch/shelterwatch/ingest/discover"
)

// Discovered is what the API needs of the gateway's onboarding list:
// proposals made from what devices announce on its broker.
type Discovered interface {
	Discovered() discover.Result
}

type proposalJSON struct {
	ID         string   `json:"id"`
	Name       string   `json:"name,omitempty"`
	Kind       string   `json:"kind"`
	Format     string   `json:"format"`
	Topic      string   `json:"topic"`
	Channel    string   `json:"channel,omitempty"`
	Via        string   `json:"via"`
	Source     string   `json:"source"`
	Ident      string   `json:"ident,omitempty"`
	Model      string   `json:"model,omitempty"`
	Vendor     string   `json:"vendor,omitempty"`
	Reports    []string `json:"reports"`
	Notes      []string `json:"notes"`
	OwnLogin   bool     `json:"own_login"`
	Configured string   `json:"configured,omitempty"`
}

type skippedJSON struct {
	Via    string `json:"via"`
	Source string `json:"source"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

type discoveredJSON struct {
	New        []proposalJSON `json:"new"`
	Configured []proposalJSON `json:"configured"`
	Skipped    []skippedJSON  `json:"skipped"`
}

func toProposalJSON(p discover.Proposal) proposalJSON {
	out := proposalJSON{ID: p.ID, Name: p.Name, Kind: string(p.Kind), Format: p.Format, Topic: p.Topic, Channel: p.Channel,
		Via: string(p.Via), Source: p.Source, Ident: p.Ident, Model: p.Model, Vendor: p.Vendor, Notes: p.Notes,
		OwnLogin: p.OwnLogin, Configured: p.Configured, Reports: []string{}}
	for _, k := range p.Reports {
		out.Reports = append(out.Reports, string(k))
	}
	if out.Notes == nil {
		out.Notes = []string{}
	}
	return out
}

// discoveredDevices lists what devices announce: new ones to add, those
// the config already has, and announcements that cannot become entries.
func (a *api) discoveredDevices(w http.ResponseWriter, r *http.Request) {
	if a.opts.Discovered == nil {
		httpError(w, http.StatusNotFound, "no onboarding list")
		return
	}
	res := a.opts.Discovered.Discovered()
	out := discoveredJSON{New: []proposalJSON{}, Configured: []proposalJSON{}, Skipped: []skippedJSON{}}
	for _, p := range res.Proposals {
		if p.Configured == "" {
			out.New = append(out.New, toProposalJSON(p))
		} else {
			out.Configured = append(out.Configured, toProposalJSON(p))
		}
	}
	for _, s := range res.Skipped {
		out.Skipped = append(out.Skipped, skippedJSON{Via: string(s.Via), Source: s.Source, Name: s.Name, Reason: s.Reason})
	}
	writeJSON(w, out)
}

type discoveredConfigBody struct {
	// Zones maps a proposal's id to the zone the installer chose.
	Zones map[string]string `json:"zones"`
	// IDs limits the answer to these proposals (all new ones when empty).
	IDs []string `json:"ids"`
}

// discoveredConfig renders new proposals as config YAML with the zones
// the installer chose, to paste into the devices: list. The gateway never
// changes its own config: the file stays the installer's, checked by
// shelter-gateway validate before a restart.
func (a *api) discoveredConfig(w http.ResponseWriter, r *http.Request) {
	if a.opts.Discovered == nil {
		httpError(w, http.StatusNotFound, "no onboarding list")
		return
	}
	var b discoveredConfigBody
	if err := readBody(r, &b); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	for id, z := range b.Zones {
		if z != "" && a.opts.Facility.zone(z) == nil {
			httpError(w, http.StatusBadRequest, "device "+id+": no zone "+z)
			return
		}
	}
	res := a.opts.Discovered.Discovered()
	if len(b.IDs) > 0 {
		res.Proposals = slices.DeleteFunc(res.Proposals, func(p discover.Proposal) bool {
			return p.Configured == "" && !slices.Contains(b.IDs, p.ID)
		})
		for _, id := range b.IDs {
			if !slices.ContainsFunc(res.Proposals, func(p discover.Proposal) bool { return p.ID == id && p.Configured == "" }) {
				httpError(w, http.StatusBadRequest, "no new discovered device "+id+" (it may have been configured, or its announcement cleared)")
				return
			}
		}
	}
	text := res.YAML(func(p discover.Proposal) string { return b.Zones[p.ID] })
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	_, _ = w.Write([]byte(strings.TrimLeft(text, "\n")))
}
