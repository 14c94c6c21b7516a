package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// AlertmanagerMessage is the body Prometheus Alertmanager posts to a
// webhook_config receiver, version "4" (alertmanager notify/webhook
// Message embedding template.Data), so that receivers written for
// Alertmanager (chat bridges, paging gateways) accept ShelterWatch alarms
// unchanged. Each message carries one alarm.
type AlertmanagerMessage struct {
	Receiver          string              `json:"receiver"`
	Status            string              `json:"status"`
	Alerts            []AlertmanagerAlert `json:"alerts"`
	GroupLabels       map[string]string   `json:"groupLabels"`
	CommonLabels      map[string]string   `json:"commonLabels"`
	CommonAnnotations map[string]string   `json:"commonAnnotations"`
	ExternalURL       string              `json:"externalURL"`
	Version           string              `json:"version"`
	GroupKey          string              `json:"groupKey"`
	TruncatedAlerts   uint64              `json:"truncatedAlerts"`
}

// AlertmanagerAlert is one alert of an AlertmanagerMessage.
type AlertmanagerAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

type alertmanagerChannel struct {
	common
	url string
}

func (c *alertmanagerChannel) Name() string { return c.name }

func (c *alertmanagerChannel) Send(ctx context.Context, ev alarm.Event) error {
	id := EventID(ev)
	msg := c.message(ev, id)
	body, err := json.Marshal(msg)
	if err != nil {
		return Permanent(fmt.Errorf("encode: %w", err))
	}
	_, err = c.http.post(ctx, c.url, body, map[string][]string{HeaderEventID: {id}})
	return err
}

// message maps ev to Alertmanager's shape:
//
//   - labels: the rule's labels, then alertname (the rule), severity,
//     facility, zone and device (empty ones left out, as Prometheus does);
//   - annotations: summary and description (English), summary_zh and
//     description_zh, event (the event kind), escalation_level, alarm_id
//     and, once acknowledged, acknowledged_by and ack_comment;
//   - status "resolved" for resolved events, else "firing" (Alertmanager
//     has no acknowledgement: it shows in the annotations);
//   - groupLabels alertname, facility, zone and device, which identify the
//     alarm, so a receiver that keys incidents on groupKey keeps one
//     incident per alarm.
func (c *alertmanagerChannel) message(ev alarm.Event, id string) AlertmanagerMessage {
	a := ev.Alarm
	labels := map[string]string{}
	for k, v := range a.Labels {
		if v != "" {
			labels[sanitizeLabelName(k)] = v
		}
	}
	core := map[string]string{"alertname": a.Rule, "severity": string(a.Severity),
		"facility": a.Facility, "zone": a.Zone, "device": a.Device}
	group := map[string]string{}
	for k, v := range core {
		delete(labels, k)
		if v != "" {
			labels[k] = v
			if k != "severity" {
				group[k] = v
			}
		}
	}
	env := c.env(ev, id)
	msgs := c.render(ev, []Lang{LangEN, LangZH}, env)
	ann := map[string]string{
		"summary": msgs[0].Title, "description": msgs[0].Body,
		"summary_zh": msgs[1].Title, "description_zh": msgs[1].Body,
		"event": string(ev.Kind), "escalation_level": strconv.Itoa(ev.Level), "alarm_id": a.ID,
	}
	if a.AckedBy != "" {
		ann["acknowledged_by"] = a.AckedBy
		if a.AckComment != "" {
			ann["ack_comment"] = a.AckComment
		}
	}
	status := "firing"
	var ends time.Time
	if ev.Kind == alarm.EventResolved {
		status = "resolved"
		ends = a.ResolvedAt
		if ends.IsZero() {
			ends = ev.At
		}
	}
	alert := AlertmanagerAlert{Status: status, Labels: labels, Annotations: ann,
		StartsAt: a.Since, EndsAt: ends, GeneratorURL: env.url, Fingerprint: fingerprint(labels)}
	return AlertmanagerMessage{
		Receiver: c.name, Status: status, Alerts: []AlertmanagerAlert{alert},
		GroupLabels: group, CommonLabels: labels, CommonAnnotations: ann,
		ExternalURL: c.external, Version: "4", GroupKey: "{}:" + labelSetString(group),
	}
}

// sanitizeLabelName makes k a valid Prometheus label name
// ([a-zA-Z_][a-zA-Z0-9_]*).
func sanitizeLabelName(k string) string {
	if k == "" {
		return "_"
	}
	b := []byte(k)
	for i, c := range b {
		ok := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}

// fingerprint is Prometheus's label set fingerprint (FNV-1a 64 over the
// sorted names and values, each followed by 0xff), printed as 16 hex
// digits like Alertmanager's alert fingerprints.
func fingerprint(labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	sort.Strings(names)
	h := fnv.New64a()
	for _, k := range names {
		h.Write([]byte(k))
		h.Write([]byte{0xff})
		h.Write([]byte(labels[k]))
		h.Write([]byte{0xff})
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// labelSetString formats labels as Prometheus does: {a="1", b="2"}.
func labelSetString(labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s=%q", k, labels[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
