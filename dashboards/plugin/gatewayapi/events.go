package gatewayapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
)

// Event is one server-sent event of GET /api/v1/events: Type is
// "snapshot", "alarm", "alarm_closed", "device" or "camera"; Data its JSON.
type Event struct {
	ID   string
	Type string
	Data json.RawMessage
}

// Snapshot is the data of a "snapshot" event (the alarms part; devices and
// cameras are left in the raw event).
type Snapshot struct {
	Alarms []Alarm `json:"alarms"`
}

// AlarmClosed is the data of an "alarm_closed" event.
type AlarmClosed struct {
	ID string `json:"id"`
}

// maxEventLine bounds one line of the stream (a snapshot of a big
// facility is one line).
const maxEventLine = 16 << 20

// Events reads the live event stream, calling handle for each event in
// order, until ctx ends (it then returns ctx.Err()), the stream ends or
// fails, or handle returns an error. The gateway sends only the events the
// token's role may see. Connecting is bounded by the client's timeout; the
// stream itself is not (the gateway sends a comment every 15 s).
func (c *Client) Events(ctx context.Context, handle func(Event) error) error {
	const path = "/api/v1/events"
	op := "GET " + path
	resp, err := c.do(ctx, c.stream, path, nil, "text/event-stream")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return &Error{Kind: KindNotGateway, Op: op, Status: resp.StatusCode,
			Detail: fmt.Sprintf("not a ShelterWatch gateway: %s answered %s, not an event stream", op, contentType(resp))}
	}
	// Closing the body unblocks the scanner when ctx ends.
	stop := context.AfterFunc(ctx, func() { resp.Body.Close() })
	defer stop()
	err = readEvents(resp.Body, handle)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("gatewayapi: %s: %w", op, err)
	}
	return fmt.Errorf("gatewayapi: %s: %w", op, io.ErrUnexpectedEOF)
}

// readEvents parses a text/event-stream body (the subset the gateway
// writes: id, event, data lines; comments).
func readEvents(r io.Reader, handle func(Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventLine)
	var ev Event
	var data bytes.Buffer
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if data.Len() > 0 || ev.Type != "" {
				if ev.Type == "" {
					ev.Type = "message"
				}
				ev.Data = json.RawMessage(bytes.Clone(data.Bytes()))
				if err := handle(ev); err != nil {
					return err
				}
			}
			ev, data = Event{}, bytes.Buffer{}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "id":
			ev.ID = string(value)
		case "event":
			ev.Type = string(value)
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.Write(value)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.EOF
}
