// ShelterWatch patch 7: deferred acknowledgements.
//
// An OnPublish hook that hands a message to slow durable storage (an fsync
// per group commit) used to block the client's read loop until the write
// returned: one message in flight per connection, and a goroutine stack
// deep inside the hook for every waiting client. With
// Options.DeferredAckWindow set, the hook may instead call Client.DeferAck,
// return at once, and call Done when the message is safe; the PUBACK is
// written then, by the client's write loop, several per write. The read
// loop goes on reading up to the window's count of unacknowledged
// publishes and then waits, before reading the next packet, for a
// deferred acknowledgement to complete: flow control back to the client
// through TCP, at a shallow point of the stack.

package mqtt

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/mochi-mqtt/server/v2/packets"
)

// AckDeferral is the pending acknowledgement of one publish. Done must be
// called exactly once, from any goroutine.
type AckDeferral struct {
	s   *Server
	cl  *Client
	qos byte

	mu     sync.Mutex
	armed  bool // processPublish has finished with the packet
	done   bool // Done has been called
	hasAck bool // QoS 1: a PUBACK is owed
	id     uint16
	err    error
	code   packets.Code // the PUBACK's reason code
}

// DeferAck defers the acknowledgement of the publish pk that an OnPublish
// hook is handling. It returns nil when the server has no deferred-ack
// window, for the inline client, and for QoS 2 (whose PUBREC/PUBREL
// exchange stays synchronous); the hook must then complete its work before
// returning. A hook that defers must return a nil error from OnPublish and
// report the outcome through Done. Call it only from OnPublish.
func (cl *Client) DeferAck(pk packets.Packet) *AckDeferral {
	if cl.State.ackSlots == nil || cl.Net.Inline || pk.FixedHeader.Qos > 1 || cl.State.deferral != nil {
		return nil
	}
	d := &AckDeferral{cl: cl, qos: pk.FixedHeader.Qos}
	cl.State.deferral = d
	cl.State.slotPassed = true
	return d
}

// Done completes a deferred acknowledgement. A nil err acknowledges the
// publish. A packets.Code of 0x80 or more (any other error counts as
// "implementation specific error") is sent in the PUBACK to an MQTT 5
// client; an MQTT 3.1.1 client, which has no way to be told, is
// disconnected so that it sends the message again after reconnecting.
func (d *AckDeferral) Done(err error) {
	d.mu.Lock()
	if d.done {
		d.mu.Unlock()
		return
	}
	d.done, d.err = true, err
	ready := d.armed
	d.mu.Unlock()
	if ready {
		d.complete()
	}
}

// arm is called by processPublish once it no longer needs the packet;
// puback says whether a PUBACK for packet id is owed (QoS 1). server is nil
// when the publish was refused before it was handed on: only the slot is
// released. The PUBACK carries no properties (no inherited user
// properties), only a reason string on failure.
func (d *AckDeferral) arm(s *Server, puback bool, id uint16) {
	d.mu.Lock()
	d.s = s
	d.hasAck, d.id = puback, id
	d.code = packets.QosCodes[1]
	d.armed = true
	ready := d.done
	d.mu.Unlock()
	if ready {
		d.complete()
	}
}

func (d *AckDeferral) complete() {
	cl := d.cl
	if !d.hasAck || d.s == nil {
		cl.releaseAckSlot()
		return
	}
	if d.err != nil {
		code := packets.ErrImplementationSpecificError
		var c packets.Code
		if errors.As(d.err, &c) && c.Code >= packets.ErrUnspecifiedError.Code {
			code = c
		}
		if cl.Properties.ProtocolVersion != 5 {
			cl.State.Inflight.IncreaseReceiveQuota()
			cl.releaseAckSlot()
			cl.Stop(code)
			return
		}
		d.code = code
	}
	// Never blocks: the channel holds as many acks as the window has
	// slots, and a slot is freed only after its ack has left the channel.
	cl.State.acks <- d
	cl.kickWriter()
}

// acquireAckSlot waits, before the read loop reads the next packet, until
// fewer than the window's count of publishes wait for their
// acknowledgement. It reports false when the client is closing.
func (cl *Client) acquireAckSlot() bool {
	if cl.State.ackSlots == nil {
		return true
	}
	select {
	case cl.State.ackSlots <- struct{}{}:
		return true
	case <-cl.State.open.Done():
		return false
	}
}

// afterPacket releases the slot taken for the packet the read loop just
// handled, unless the packet went to a publish worker (which settles it)
// or its acknowledgement was deferred (the deferral releases it).
func (cl *Client) afterPacket() {
	if cl.State.ackSlots == nil {
		return
	}
	if cl.State.dispatched {
		cl.State.dispatched = false
		return
	}
	if cl.ops.options.PublishWorkers > 0 {
		// Only publishes defer, and they are handled by the worker: the
		// deferral fields are the worker's.
		cl.releaseAckSlot()
		return
	}
	cl.settleAckSlot()
}

// settleAckSlot is afterPacket for the goroutine that handled a publish
// (the read loop, or the client's publish worker).
func (cl *Client) settleAckSlot() {
	if cl.State.ackSlots == nil {
		return
	}
	passed := cl.State.slotPassed
	cl.State.slotPassed = false
	if d := cl.State.deferral; d != nil {
		// The hook deferred but processPublish did not take the deferral
		// (the packet was refused on the way): nothing to acknowledge; the
		// slot is freed when the hook calls Done.
		cl.State.deferral = nil
		d.arm(nil, false, 0)
	}
	if !passed {
		cl.releaseAckSlot()
	}
}

func (cl *Client) releaseAckSlot() {
	select {
	case <-cl.State.ackSlots:
	default:
	}
}

// ackBuffers holds the buffers writeAcks encodes into.
var ackBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxAckBatch caps the acknowledgements written in one write.
const maxAckBatch = 64

// writeAcks writes the deferred acknowledgements queued for the client in
// one write, then frees their slots. It allocates nothing per
// acknowledgement unless a hook wants the packets.
func (cl *Client) writeAcks(first *AckDeferral) {
	var arr [maxAckBatch]*AckDeferral
	batch := append(arr[:0], first)
	for len(batch) < maxAckBatch {
		select {
		case d := <-cl.State.acks:
			batch = append(batch, d)
			continue
		default:
		}
		break
	}
	hooks := cl.ops.hooks
	encodeHook, sentHook := hooks.Provides(OnPacketEncode), hooks.Provides(OnPacketSent)
	buf := ackBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer ackBuffers.Put(buf)
	var sent []packets.Packet // only for OnPacketSent hooks
	var ends []int
	for _, d := range batch {
		pk := packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Puback},
			PacketID:    d.id,
			ReasonCode:  d.code.Code,
		}
		if d.code.Code >= packets.ErrUnspecifiedError.Code {
			pk.Properties.ReasonString = d.code.Reason
		}
		pk.ProtocolVersion = cl.Properties.ProtocolVersion
		if cl.Properties.Props.RequestProblemInfoFlag && cl.Properties.Props.RequestProblemInfo == 0x0 {
			pk.Mods.DisallowProblemInfo = true // [MQTT-3.1.2-29]
		}
		pk.Mods.AllowResponseInfo = true
		if encodeHook {
			pk = hooks.OnPacketEncode(cl, pk)
		}
		mark := buf.Len()
		if err := pk.PubackEncode(buf); err != nil {
			buf.Truncate(mark)
			cl.ops.log.Debug("failed encoding deferred puback", "error", err, "client", cl.ID)
			continue
		}
		if sentHook {
			sent = append(sent, pk)
			ends = append(ends, buf.Len())
		}
	}
	raw := buf.Bytes()
	if !cl.Closed() && cl.Net.Conn != nil && len(raw) > 0 {
		err := func() error {
			cl.Lock()
			defer cl.Unlock()
			cl.setWriteDeadline()
			if cl.Net.outbuf != nil {
				_, _ = cl.Net.outbuf.Write(raw)
				return cl.flushOutbuf()
			}
			_, err := cl.Net.Conn.Write(raw)
			return err
		}()
		if err != nil {
			cl.stopIfWriteTimedOut(err)
			cl.ops.log.Debug("failed writing deferred pubacks", "error", err, "client", cl.ID)
		} else {
			atomic.AddInt64(&cl.ops.info.BytesSent, int64(len(raw)))
			atomic.AddInt64(&cl.ops.info.PacketsSent, int64(len(batch)))
			start := 0
			for i, pk := range sent {
				hooks.OnPacketSent(cl, pk, bytes.Clone(raw[start:ends[i]]))
				start = ends[i]
			}
		}
	}
	completeHook := hooks.Provides(OnQosComplete)
	for _, d := range batch {
		cl.State.Inflight.IncreaseReceiveQuota()
		if completeHook {
			hooks.OnQosComplete(cl, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: d.id})
		}
		cl.releaseAckSlot()
	}
}
