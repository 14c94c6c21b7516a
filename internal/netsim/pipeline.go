package netsim

import (
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// maxQueuedBytes bounds what one direction holds in flight. With a rate
// cap Queue bounds it first; without one a fast sender would otherwise
// park RTT/2 worth of loopback throughput (gigabytes per second) in
// memory. UDP drops past it (counted as overflow), TCP waits.
const maxQueuedBytes = 8 << 20

// inputQueue is the capacity of the channel from a reader to its pipeline:
// enough to smooth over the pipeline being descheduled for a moment,
// small enough that a stalled pipeline stops its reader (and so the kernel
// buffer, or TCP flow control, takes over).
const inputQueue = 128

// packet is a datagram or a TCP chunk with a time: its arrival at the
// relay until the pipeline admits it, its delivery time afterwards.
type packet struct {
	b  []byte
	at time.Time
	// flow is the UDP client the datagram is from or for, so a pipeline
	// shared by every client (Options.SharedLink) delivers each to its
	// own; nil on TCP.
	flow *udpFlow
}

// DirStats counts one direction's traffic.
type DirStats struct {
	// Packets and Bytes arrived at the relay (TCP: chunks as read).
	Packets, Bytes int64
	// Lost were dropped by the emulated loss.
	Lost int64
	// Overflow were tail-dropped by a full bottleneck buffer.
	Overflow int64
	// Delivered and DeliveredBytes were written to the other side.
	Delivered, DeliveredBytes int64
}

// Stats counts a relay's traffic since it started, over all its clients.
type Stats struct {
	// Up is client→server, Down server→client.
	Up, Down DirStats
}

// counters is the atomic form of DirStats, shared by every pipeline of
// one direction of a relay.
type counters struct {
	packets, bytes, lost, overflow, delivered, deliveredBytes atomic.Int64
}

func (c *counters) snapshot() DirStats {
	return DirStats{
		Packets: c.packets.Load(), Bytes: c.bytes.Load(),
		Lost: c.lost.Load(), Overflow: c.overflow.Load(),
		Delivered: c.delivered.Load(), DeliveredBytes: c.deliveredBytes.Load(),
	}
}

// pipeline impairs one direction. Everything but in, stop, deliver and the
// counters is owned by the goroutine running run.
type pipeline struct {
	direction
	// stream (TCP) neither loses nor drops: a full buffer stops taking
	// input, which holds the reader back and lets TCP flow control slow
	// the sender, as a real bottleneck would.
	stream  bool
	rng     *rand.Rand
	in      <-chan packet
	stop    <-chan struct{}
	deliver func(packet) error
	c       *counters
	logf    func(string, ...any)

	q           fifo
	qBytes      int
	lastDepart  time.Time // when the link is free again
	lastDeliver time.Time // delivery time of the newest packet queued
	failed      bool      // a delivery failed already (logged once)
}

func newPipeline(d direction, stream bool, seed, number uint64, in <-chan packet, stop <-chan struct{},
	deliver func(packet) error, c *counters, logf func(string, ...any)) *pipeline {
	return &pipeline{direction: d, stream: stream, rng: rand.New(rand.NewPCG(seed, number)),
		in: in, stop: stop, deliver: deliver, c: c, logf: logf}
}

// run admits packets and delivers them when due, until stop is closed
// (false) or in is closed and everything queued is delivered (true). A
// stream pipeline also ends, false, when a delivery fails: the
// connection is broken.
func (p *pipeline) run() bool {
	// One timer, always aimed at the queue head: packets are delivered
	// in order, so the head is the only one due next, and a goroutine
	// (or timer) per packet would cost far more at video packet rates.
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var armed time.Time // when the timer fires; zero: not set
	in := p.in
	for {
		if in == nil && p.q.n == 0 {
			return true
		}
		now := time.Now()
		recv := in
		var wake time.Time
		if p.q.n > 0 {
			wake = p.q.peek().at
		}
		if p.stream && p.full(now) {
			recv = nil // deliver first
			// Booked beyond the buffer only: take input again as soon
			// as the backlog is back within it, not at the next delivery,
			// or the link would idle.
			if free := p.lastDepart.Add(-p.queue); p.qBytes < maxQueuedBytes && free.Before(wake) {
				wake = free
			}
		}
		if !wake.IsZero() && !wake.Equal(armed) {
			timer.Reset(wake.Sub(now))
			armed = wake
		}
		select {
		case <-p.stop:
			return false
		case pk, ok := <-recv:
			if !ok {
				in = nil
				continue
			}
			p.admit(pk)
		case <-timer.C:
			armed = time.Time{}
			if !p.deliverDue(time.Now()) {
				return false
			}
		}
	}
}

// full reports whether a stream pipeline should stop taking input: the
// link is booked beyond the buffer, or too much is in flight.
func (p *pipeline) full(now time.Time) bool {
	return p.qBytes >= maxQueuedBytes || (p.rate > 0 && p.lastDepart.Sub(now) > p.queue)
}

// admit applies loss, the rate cap and the delay to a packet that arrived
// at pk.at, and queues it for delivery.
func (p *pipeline) admit(pk packet) {
	now, size := pk.at, len(pk.b)
	p.c.packets.Add(1)
	p.c.bytes.Add(int64(size))
	if !p.stream && p.loss > 0 && p.rng.Float64() < p.loss {
		p.c.lost.Add(1)
		return
	}
	if !p.stream && p.qBytes+size > maxQueuedBytes {
		p.c.overflow.Add(1)
		return
	}
	depart := now
	if p.rate > 0 {
		depart = maxTime(now, p.lastDepart).Add(serialisation(size, p.rate))
		if !p.stream && depart.Sub(now) > p.queue {
			// Tail drop: the link stays booked only by what it carries.
			p.c.overflow.Add(1)
			return
		}
		p.lastDepart = depart
	}
	oneWay := p.delay
	if p.jitter > 0 {
		oneWay += time.Duration(p.rng.Int64N(2*int64(p.jitter)+1)) - p.jitter
	}
	// Jitter larger than the delay cannot deliver before departure.
	at := depart.Add(max(oneWay, 0))
	// In order: a packet held up delays those behind it.
	at = maxTime(at, p.lastDeliver)
	p.lastDeliver = at
	pk.at = at
	p.q.push(pk)
	p.qBytes += size
}

// deliverDue delivers every queued packet due at now. It reports false
// when a stream's delivery failed.
func (p *pipeline) deliverDue(now time.Time) bool {
	for p.q.n > 0 && !p.q.peek().at.After(now) {
		pk := p.q.pop()
		p.qBytes -= len(pk.b)
		if err := p.deliver(pk); err != nil {
			if p.stream {
				return false
			}
			// A UDP peer that went away makes every write fail: say so
			// once, count the rest as not delivered. (A shared pipeline
			// says so once for all its clients.)
			if !p.failed {
				p.failed = true
				p.logf("netsim: deliver: %v", err)
			}
			continue
		}
		p.c.delivered.Add(1)
		p.c.deliveredBytes.Add(int64(len(pk.b)))
	}
	return true
}

// serialisation is how long size bytes occupy a link of rate bits/s.
func serialisation(size, rate int) time.Duration {
	return time.Duration(int64(size) * 8 * int64(time.Second) / int64(rate))
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// fifo is a growable ring of packets.
type fifo struct {
	buf     []packet
	head, n int
}

func (f *fifo) push(pk packet) {
	if f.n == len(f.buf) {
		buf := make([]packet, max(16, 2*len(f.buf)))
		for i := range f.n {
			buf[i] = f.buf[(f.head+i)%len(f.buf)]
		}
		f.buf, f.head = buf, 0
	}
	f.buf[(f.head+f.n)%len(f.buf)] = pk
	f.n++
}

func (f *fifo) peek() *packet { return &f.buf[f.head] }

func (f *fifo) pop() packet {
	pk := f.buf[f.head]
	f.buf[f.head] = packet{} // let the payload be collected
	f.head = (f.head + 1) % len(f.buf)
	f.n--
	return pk
}
