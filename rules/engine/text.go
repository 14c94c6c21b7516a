package engine

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"
	"time"
)

// TemplateData is what title and body templates see.
type TemplateData struct {
	Rule       string
	Facility   string
	Device     string
	DeviceName string
	Kind       string
	Zone       string
	ZoneName   string
	ZoneNameZH string
	// Value is the triggering reading's value as text ("" for absence
	// and zone alarms).
	Value string
	// Devices lists the devices of a coincidence.
	Devices []string
	// Since is when the condition started, in the facility's time zone.
	Since time.Time
}

var sampleData = TemplateData{Rule: "sample", Facility: "north-shelter", Device: "kitchen-smoke-1", DeviceName: "Kitchen smoke",
	Kind: "smoke", Zone: "kitchen", ZoneName: "Kitchen", ZoneNameZH: "厨房", Value: "true",
	Devices: []string{"kitchen-smoke-1", "kitchen-smoke-2"}, Since: time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)}

const maxTemplate = 4096

// parseTemplate parses a rule text and runs it once on sample data, so
// that a template naming a field that does not exist fails at load, not
// when a fire alarm is being sent.
func parseTemplate(name, src string) (*template.Template, error) {
	if len(src) > maxTemplate {
		return nil, fmt.Errorf("template longer than %d bytes", maxTemplate)
	}
	t, err := template.New(name).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("bad template: %s", oneLine(err.Error()))
	}
	if _, err := render(t, sampleData); err != nil {
		return nil, err
	}
	return t, nil
}

// maxRendered bounds what one template may produce (a range over a
// constant could otherwise blow up a message).
const maxRendered = 16 << 10

type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxRendered {
		return 0, fmt.Errorf("template output longer than %d bytes", maxRendered)
	}
	return b.Buffer.Write(p)
}

func render(t *template.Template, d TemplateData) (out string, err error) {
	if t == nil {
		return "", nil
	}
	defer func() {
		// text/template recovers its own panics, but a method on a value
		// could still panic; a broken template must never take the engine
		// down.
		if p := recover(); p != nil {
			err = fmt.Errorf("template %s: %v", t.Name(), p)
		}
	}()
	var b limitedBuffer
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("template %s: %s", t.Name(), oneLine(err.Error()))
	}
	return strings.TrimSpace(b.String()), nil
}
