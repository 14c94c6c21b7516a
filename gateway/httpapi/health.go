package httpapi

import (
	"net/http"
	"time"
)

// StoreDisk is the local store's disk space.
type StoreDisk struct {
	// UsedBytes is what the store occupies on disk.
	UsedBytes uint64 `json:"used_bytes"`
	// FreeBytes is the space left on the store's file system for the
	// gateway.
	FreeBytes uint64 `json:"free_bytes"`
	// BudgetBytes caps the store (store.disk_budget); the oldest readings
	// make way beyond it.
	BudgetBytes uint64 `json:"budget_bytes"`
	// ReserveBytes is the free space below which readings are refused
	// (store.disk_reserve; 0: none).
	ReserveBytes uint64 `json:"reserve_bytes"`
}

type gatewayHealthJSON struct {
	Version       string          `json:"version"`
	UptimeSeconds *float64        `json:"uptime_seconds"`
	Forwarders    []forwarderJSON `json:"forwarders"`
	DeadLetters   deadLettersJSON `json:"dead_letters"`
	BrokerClients *int            `json:"broker_clients"`
	Store         *StoreDisk      `json:"store"`
	Cameras       *cameraCounts   `json:"cameras"`
	OpenAlarms    *int            `json:"open_alarms"`
}

type deadLettersJSON struct {
	Count  *int       `json:"count"`
	Newest *time.Time `json:"newest"`
}

type cameraCounts struct {
	Total  int `json:"total"`
	Live   int `json:"live"`
	Failed int `json:"failed"`
}

// gatewayHealth is the console's gateway health page in one answer, each
// part from what the gateway already keeps (no scan of anything): null
// where the gateway does not know (no embedded broker, no cameras, a
// part that did not answer).
func (a *api) gatewayHealth(w http.ResponseWriter, r *http.Request) {
	out := gatewayHealthJSON{Version: a.opts.Version, Forwarders: []forwarderJSON{}}
	if !a.opts.Started.IsZero() {
		up := a.opts.Clock().Sub(a.opts.Started).Round(time.Second).Seconds()
		out.UptimeSeconds = &up
	}
	if a.opts.Forwarders != nil {
		for _, s := range a.opts.Forwarders() {
			out.Forwarders = append(out.Forwarders, forwarderJSON{Status: s, BacklogSeconds: s.BacklogAge.Seconds()})
		}
	}
	if a.opts.DeadLetterCount != nil {
		if n, err := a.opts.DeadLetterCount(); err == nil {
			out.DeadLetters.Count = &n
		} else {
			a.opts.Logger.Error("httpapi: health: count dead letters", "err", err)
		}
	}
	if a.opts.Store != nil {
		if dls, err := a.opts.Store.DeadLetters(1); err == nil && len(dls) == 1 {
			t := dls[0].Time.UTC()
			out.DeadLetters.Newest = &t
		}
	}
	if a.opts.BrokerClients != nil {
		if n := a.opts.BrokerClients(); n >= 0 {
			out.BrokerClients = &n
		}
	}
	if a.opts.StoreDisk != nil {
		if d, err := a.opts.StoreDisk(); err == nil {
			out.Store = &d
		} else {
			a.opts.Logger.Error("httpapi: health: store disk", "err", err)
		}
	}
	if a.opts.Video != nil && a.opts.Video.Cameras != nil {
		c := &cameraCounts{}
		for _, s := range a.opts.Video.Cameras() {
			c.Total++
			switch s.State {
			case "live":
				c.Live++
			case "failed", "stalled":
				c.Failed++
			}
		}
		out.Cameras = c
	}
	if a.opts.Alarms != nil {
		if list, err := a.opts.Alarms.Active(r.Context()); err == nil {
			n := len(list)
			out.OpenAlarms = &n
		}
	}
	writeJSON(w, out)
}
