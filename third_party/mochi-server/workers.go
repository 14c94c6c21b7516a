// ShelterWatch patch 8: publishes handled off the connection goroutines.
//
// mochi handles every packet on its connection's goroutine, passing the
// 808-byte packet by value through receivePacket, processPacket,
// processPublish and the hooks: handling one publish takes about 17 KiB
// of stack before a hook does any work of its own, so every connection
// that has published holds a 32 KiB stack. A thousand sensors publishing
// at once cost 32 MB of stacks. With Options.PublishWorkers set, a
// connection's goroutine only reads: it hands each PUBLISH to one of a few
// workers (always the same one for a client, so a client's publishes are
// handled in the order they were sent) and goes on reading, with a stack
// of a few KiB. Other packets are still handled by the connection.
//
// A worker must not wait on one client: hooks should defer their slow work
// (Client.DeferAck), and the few writes made while handling a publish (a
// refused publish's PUBACK or DISCONNECT) are bounded by
// Options.ClientWriteTimeout.

package mqtt

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

type publishJob struct {
	cl *Client
	pk packets.Packet
}

type publishWorkers struct {
	queues []chan *publishJob
	wg     sync.WaitGroup
	next   uint32
	mu     sync.Mutex
}

// startPublishWorkers starts the workers when the options ask for them.
func (s *Server) startPublishWorkers() {
	n := s.Options.PublishWorkers
	if n <= 0 || s.workers != nil {
		return
	}
	w := &publishWorkers{queues: make([]chan *publishJob, n)}
	for i := range w.queues {
		q := make(chan *publishJob, 64)
		w.queues[i] = q
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for job := range q {
				s.handlePublishJob(job)
			}
		}()
	}
	s.workers = w
}

// stopPublishWorkers ends the workers once every connection has ended
// (nothing can be handed to them any more); they finish what they hold.
func (s *Server) stopPublishWorkers() {
	if s.workers == nil {
		return
	}
	for _, q := range s.workers.queues {
		close(q)
	}
	s.workers.wg.Wait()
}

// assignWorker picks the worker for a new client, round robin.
func (w *publishWorkers) assign() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := int(w.next % uint32(len(w.queues)))
	w.next++
	return i
}

// readPacket is the connection goroutine's handler: publishes go to the
// client's worker, everything else is handled here.
func (s *Server) readPacket(cl *Client, pk packets.Packet) error {
	if s.workers == nil || pk.FixedHeader.Type != packets.Publish {
		return s.receivePacket(cl, pk)
	}
	job := publishJobs.Get().(*publishJob)
	job.cl, job.pk = cl, pk
	select {
	case s.workers.queues[cl.State.worker] <- job:
		cl.State.dispatched = true
		return nil
	case <-cl.State.open.Done():
		*job = publishJob{}
		publishJobs.Put(job)
		return ErrConnectionClosed
	}
}

// publishJobs recycles jobs: each holds an 808-byte packet, one per
// publish.
var publishJobs = sync.Pool{New: func() any { return new(publishJob) }}

// handlePublishJob handles one publish on a worker. Every publish read is
// handled, even if its client has gone meanwhile: it was read, so it may
// be the only copy.
func (s *Server) handlePublishJob(job *publishJob) {
	cl := job.cl
	err := s.receivePacket(cl, job.pk)
	*job = publishJob{}
	publishJobs.Put(job)
	cl.settleAckSlot()
	if err != nil {
		// As when the read loop's handler fails: the connection ends.
		cl.Stop(err)
	}
}

// setWriteDeadline applies Options.ClientWriteTimeout to the write about
// to be made; the caller holds the client's lock.
func (cl *Client) setWriteDeadline() {
	if t := cl.ops.options.ClientWriteTimeout; t > 0 && cl.Net.Conn != nil {
		_ = cl.Net.Conn.SetWriteDeadline(time.Now().Add(t))
	}
}

// stopIfWriteTimedOut disconnects a client whose write did not complete in
// time: part of a packet may have been written, so the stream is lost.
func (cl *Client) stopIfWriteTimedOut(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		cl.Stop(ErrClientWriteTimeout)
	}
}

// ErrClientWriteTimeout is the stop cause of a client that did not take a
// write within Options.ClientWriteTimeout.
var ErrClientWriteTimeout = errors.New("client did not read within the write timeout")
