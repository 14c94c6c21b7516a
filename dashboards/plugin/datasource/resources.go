package datasource

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/shelterwatch/shelterwatch/dashboards/plugin/gatewayapi"
)

// Pick list item kinds; every item names its gateway and facility.
type (
	facilityItem struct {
		Gateway  string `json:"gateway"`
		Facility string `json:"facility"`
		Name     string `json:"name"`
		Timezone string `json:"timezone"`
		Version  string `json:"version"`
	}
	zoneItem struct {
		Gateway  string `json:"gateway"`
		Facility string `json:"facility"`
		Zone     string `json:"zone"`
		Name     string `json:"name"`
	}
	deviceItem struct {
		Gateway  string `json:"gateway"`
		Facility string `json:"facility"`
		Device   string `json:"device"`
		Zone     string `json:"zone"`
		Kind     string `json:"kind"`
	}
	ruleItem struct {
		Gateway  string `json:"gateway"`
		Facility string `json:"facility"`
		Rule     string `json:"rule"`
	}
	cameraItem struct {
		Gateway  string `json:"gateway"`
		Facility string `json:"facility"`
		Camera   string `json:"camera"`
		Name     string `json:"name"`
		Zone     string `json:"zone"`
	}
)

// PickList is a resource's answer: the items of the gateways that
// answered and, per gateway that did not, why.
type PickList[T any] struct {
	Items  []T               `json:"items"`
	Errors []PickListProblem `json:"errors"`
}

// PickListProblem names a gateway that did not answer and why.
type PickListProblem struct {
	Gateway string `json:"gateway"`
	Error   string `json:"error"`
}

// resourceMux serves GET /facilities, /zones, /devices, /rules and
// /cameras, each optionally limited by ?gateway=<name> (repeatable).
// Rules come from the gateway's rule list; a gateway too old to have one
// gives those of its open alarms and of the alarms of the last 30 days
// (its alarm report).
func (d *Datasource) resourceMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /facilities", pickList(d, func(ctx context.Context, g *gateway, f gatewayapi.Facility) ([]facilityItem, error) {
		return []facilityItem{{g.name, f.ID, f.Name, f.Timezone, f.Version}}, nil
	}))
	mux.HandleFunc("GET /zones", pickList(d, func(ctx context.Context, g *gateway, f gatewayapi.Facility) ([]zoneItem, error) {
		out := []zoneItem{}
		for _, z := range f.Zones {
			out = append(out, zoneItem{g.name, f.ID, z.ID, z.Name})
		}
		return out, nil
	}))
	mux.HandleFunc("GET /devices", pickList(d, func(ctx context.Context, g *gateway, f gatewayapi.Facility) ([]deviceItem, error) {
		devs, err := g.client.Devices(ctx)
		out := []deviceItem{}
		for _, dv := range devs {
			out = append(out, deviceItem{g.name, f.ID, dv.Device, dv.Zone, dv.Kind})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Device < out[j].Device })
		return out, err
	}))
	mux.HandleFunc("GET /rules", pickList(d, func(ctx context.Context, g *gateway, f gatewayapi.Facility) ([]ruleItem, error) {
		rules, err := g.client.Rules(ctx)
		if err == nil {
			out := make([]ruleItem, 0, len(rules))
			for _, r := range rules {
				out = append(out, ruleItem{g.name, f.ID, r.ID})
			}
			return out, nil
		}
		var ge *gatewayapi.Error
		if !errors.As(err, &ge) || ge.Status != http.StatusNotFound {
			return nil, err
		}
		alarms, err := g.client.Alarms(ctx)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, a := range alarms {
			seen[a.Rule] = true
		}
		to := time.Now()
		rep, err := g.client.AlarmReport(ctx, to.Add(-30*24*time.Hour), to)
		if err != nil && gatewayapi.KindOf(err) != gatewayapi.KindForbidden {
			return nil, err
		}
		for _, gr := range rep.Groups {
			seen[gr.Rule] = true
		}
		out := []ruleItem{}
		for r := range seen {
			out = append(out, ruleItem{g.name, f.ID, r})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Rule < out[j].Rule })
		return out, nil
	}))
	mux.HandleFunc("GET /cameras", pickList(d, func(ctx context.Context, g *gateway, f gatewayapi.Facility) ([]cameraItem, error) {
		cams, err := g.client.Cameras(ctx)
		out := []cameraItem{}
		for _, c := range cams {
			out = append(out, cameraItem{g.name, f.ID, c.ID, c.Name, c.Zone})
		}
		return out, err
	}))
	return mux
}

// pickList answers fn's items across the selected gateways.
func pickList[T any](d *Datasource, fn func(context.Context, *gateway, gatewayapi.Facility) ([]T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		gws, err := d.selectGateways(r.URL.Query()["gateway"])
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		res := fanOut(r.Context(), gws, func(ctx context.Context, g *gateway) ([]T, error) {
			f, err := g.facilityInfo(ctx)
			if err != nil {
				return nil, err
			}
			return fn(ctx, g, f)
		})
		out := PickList[T]{Items: []T{}, Errors: []PickListProblem{}}
		for _, x := range res {
			if x.err != nil {
				out.Errors = append(out.Errors, PickListProblem{x.gw.name, gatewayapi.Detail(x.err)})
				continue
			}
			out.Items = append(out.Items, x.val...)
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v) // the client went away: nothing to do
}
