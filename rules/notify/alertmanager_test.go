package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// The receiver side: the shape of Alertmanager's webhook body as its
// receivers declare it (alertmanager notify/webhook.Message embedding
// template.Data, version "4").
type AMKV map[string]string

type AMAlert struct {
	Status       string    `json:"status"`
	Labels       AMKV      `json:"labels"`
	Annotations  AMKV      `json:"annotations"`
	StartsAt     time.Time `json:"startsAt"`
	EndsAt       time.Time `json:"endsAt"`
	GeneratorURL string    `json:"generatorURL"`
	Fingerprint  string    `json:"fingerprint"`
}

type AMData struct {
	Receiver          string    `json:"receiver"`
	Status            string    `json:"status"`
	Alerts            []AMAlert `json:"alerts"`
	GroupLabels       AMKV      `json:"groupLabels"`
	CommonLabels      AMKV      `json:"commonLabels"`
	CommonAnnotations AMKV      `json:"commonAnnotations"`
	ExternalURL       string    `json:"externalURL"`
}

type AMMessage struct {
	*AMData
	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

func TestAlertmanagerPayload(t *testing.T) {
	rc := newReceiver(t, func(int, received) (int, map[string]string, string) { return 200, nil, "" })
	cfg := Config{ExternalURL: "https://gw.example.org", Channels: []ChannelConfig{{Name: "am-bridge", Type: TypeAlertmanager,
		Alertmanager: AlertmanagerConfig{URL: rc.URL + "/alerts"}}}}
	ch := buildOne(t, cfg, Env{})

	firing := event("kitchen-smoke/dev:kitchen-smoke-1", alarm.SeverityFire, alarm.EventFiring)
	firing.Alarm.Labels = map[string]string{"team": "night", "building-wing": "A", "severity": "spoofed", "empty": ""}
	acked := firing
	acked.Kind, acked.Alarm.State, acked.Alarm.AckedBy, acked.Alarm.AckComment = alarm.EventAcknowledged, alarm.StateAcknowledged, "li.na", "on my way"
	resolved := firing
	resolved.Kind, resolved.Alarm.State, resolved.Alarm.ResolvedAt = alarm.EventResolved, alarm.StateResolved, t0.Add(9*time.Minute)
	zoneWide := event("dorm-cold/zone:dorm-3", alarm.SeverityWarning, alarm.EventFiring)
	zoneWide.Alarm.Device = ""

	fingerprints := map[string]string{} // alarm id → fingerprint: the same through its life
	for _, tc := range []struct {
		name     string
		ev       alarm.Event
		status   string
		endsAt   time.Time
		groupKey string
		ann      map[string]string
	}{
		{"firing", firing, "firing", time.Time{},
			`{}:{alertname="kitchen-smoke", device="dev-kitchen-smoke/dev:kitchen-smoke-1", facility="shelter-7", zone="dorm-3"}`,
			map[string]string{"event": "firing", "escalation_level": "0"}},
		{"acknowledged stays firing", acked, "firing", time.Time{}, "",
			map[string]string{"event": "acknowledged", "acknowledged_by": "li.na", "ack_comment": "on my way"}},
		{"resolved", resolved, "resolved", t0.Add(9 * time.Minute), "", map[string]string{"event": "resolved"}},
		{"zone-wide alarm has no device label", zoneWide, "firing", time.Time{},
			`{}:{alertname="dorm-cold", facility="shelter-7", zone="dorm-3"}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := ch.Send(context.Background(), tc.ev); err != nil {
				t.Fatal(err)
			}
			r := rc.next(t, 5*time.Second)
			dec := json.NewDecoder(bytes.NewReader(r.body))
			dec.DisallowUnknownFields() // nothing a receiver does not know about
			var m AMMessage
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("decode as Alertmanager's message: %v\n%s", err, r.body)
			}
			if m.AMData == nil || m.Version != "4" || m.Receiver != "am-bridge" || m.Status != tc.status ||
				m.ExternalURL != "https://gw.example.org" || len(m.Alerts) != 1 || m.TruncatedAlerts != 0 {
				t.Fatalf("message %s", r.body)
			}
			if tc.groupKey != "" && m.GroupKey != tc.groupKey {
				t.Fatalf("groupKey %s, want %s", m.GroupKey, tc.groupKey)
			}
			a := m.Alerts[0]
			ls := model.LabelSet{}
			for k, v := range a.Labels {
				if !model.LegacyValidation.IsValidLabelName(k) {
					t.Errorf("label name %q is not valid in Prometheus", k)
				}
				ls[model.LabelName(k)] = model.LabelValue(v)
			}
			if fp, seen := fingerprints[tc.ev.Alarm.ID]; seen && fp != a.Fingerprint {
				t.Errorf("fingerprint changed from %s to %s", fp, a.Fingerprint)
			}
			fingerprints[tc.ev.Alarm.ID] = a.Fingerprint
			if a.Fingerprint != ls.Fingerprint().String() {
				t.Errorf("fingerprint %s, Prometheus computes %s", a.Fingerprint, ls.Fingerprint())
			}
			if want := "{}:" + model.LabelSet(labelSetOf(m.GroupLabels)).String(); m.GroupKey != want {
				t.Errorf("groupKey %s, want %s", m.GroupKey, want)
			}
			if a.Labels["alertname"] != tc.ev.Alarm.Rule || a.Labels["severity"] != string(tc.ev.Alarm.Severity) ||
				a.Labels["facility"] != "shelter-7" || a.Labels["zone"] != "dorm-3" || a.Labels["team"] != "night" {
				t.Errorf("labels %v", a.Labels)
			}
			if _, ok := a.Labels["device"]; ok != (tc.ev.Alarm.Device != "") {
				t.Errorf("device label %q for device %q", a.Labels["device"], tc.ev.Alarm.Device)
			}
			if _, ok := a.Labels["empty"]; ok {
				t.Errorf("empty label kept: %v", a.Labels)
			}
			if tc.ev.Alarm.Labels["building-wing"] != "" && a.Labels["building_wing"] != "A" {
				t.Errorf("label with '-' not sanitized: %v", a.Labels)
			}
			if a.Status != tc.status || !a.StartsAt.Equal(t0) || !a.EndsAt.Equal(tc.endsAt) {
				t.Errorf("alert status %s starts %v ends %v", a.Status, a.StartsAt, a.EndsAt)
			}
			if !strings.HasPrefix(a.GeneratorURL, "https://gw.example.org/alarms/") {
				t.Errorf("generatorURL %q", a.GeneratorURL)
			}
			if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(a.Fingerprint) {
				t.Errorf("fingerprint %q", a.Fingerprint)
			}
			for _, k := range []string{"summary", "description", "summary_zh", "description_zh"} {
				if a.Annotations[k] == "" {
					t.Errorf("annotation %s empty: %v", k, a.Annotations)
				}
			}
			if !strings.Contains(a.Annotations["summary"], tc.ev.Alarm.Title.EN) || !strings.Contains(a.Annotations["summary_zh"], tc.ev.Alarm.Title.ZH) {
				t.Errorf("summaries %q / %q", a.Annotations["summary"], a.Annotations["summary_zh"])
			}
			for k, v := range tc.ann {
				if a.Annotations[k] != v {
					t.Errorf("annotation %s = %q, want %q", k, a.Annotations[k], v)
				}
			}
		})
	}
}

func labelSetOf(kv AMKV) model.LabelSet {
	ls := model.LabelSet{}
	for k, v := range kv {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls
}
