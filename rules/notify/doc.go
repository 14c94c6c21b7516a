// Package notify delivers alarm events (alarm.Event from rules/alarm) to
// the people and devices that must hear of them: a generic signed JSON
// webhook, Alertmanager-compatible webhook receivers, SMTP e-mail, MQTT
// zone states for sirens and panels, and the WeCom, DingTalk and Feishu
// group robots. Messages are rendered from templates in zh-CN and English.
// Wire formats, the configuration reference and how a receiver verifies
// the webhook signature are in README.md beside this file.
//
// # Use
//
//	cfg.Defaults()                       // the notify section, decoded
//	errs := cfg.Validate()               // []cfgerr.Problem, keys like "channels[2].webhook.url"
//	o, err := notify.New(cfg, notify.Env{Dir: dataDir + "/notify", Publisher: brk, Location: loc, Logger: log})
//	o.Register(prometheus.DefaultRegisterer)
//	go o.Run(ctx)                        // delivers until ctx ends, then closes
//	err = o.Enqueue(ctx, ev)             // for each event the engine drains; EnqueueAll for a batch
//	ds := o.Deliveries(alarmID)          // for the API
//
// # Delivery
//
// An Outbox is a durable queue in a Pebble database. Enqueue routes the
// event (Config.Routes) to its channels and returns once one delivery per
// channel is fsynced; concurrent Enqueues share one sync (group commit).
// From then on each delivery is tried until it is delivered or failed, and
// a restart resumes the pending ones at once. Delivery is at least once:
// a receiver may see an event twice (a crash between its reply and our
// record of it) and drops duplicates by the event id (EventID, sent as
// X-ShelterWatch-Event-Id, DingTalk's msgUuid, the mail's Message-ID).
// Enqueueing an event the outbox already holds does nothing.
//
// Each channel has its own workers (Concurrency, default 2) and one more
// that takes only critical and fire deliveries, so a dead or slow channel
// delays nobody else and a fire never waits behind lesser alarms. Ready
// deliveries go highest severity first, oldest first within a severity;
// the events of one alarm reach a channel in the order they happened (a
// "resolved" never overtakes its "firing"), so a failing delivery holds
// back the later events of its alarm on that channel only.
//
// A failed attempt is retried after a capped, jittered exponential backoff
// (internal/backoff; Retry.Min to Retry.Max, at most 30s for critical and
// fire), longer when the receiver asks with Retry-After. Channels say when
// retrying is pointless (DeliveryError.Permanent: a 4xx other than 408 and
// 429, a robot's signature or keyword check, a mailbox that does not
// exist); such a delivery is marked failed at once. Other deliveries of
// info, trouble and warning alarms fail after MaxAge (or MaxAttempts).
// Critical and fire deliveries never expire.
//
// # Concurrency
//
// Open starts a writer goroutine (group commit), a maintenance goroutine
// (purging finished deliveries after KeepFinished), the workers, and the
// MQTT channels' republishing of zone states; Close stops them all and
// waits. A Send in flight at Close is cancelled and resumes at the next
// Open. All methods are safe for concurrent use.
//
// # Backpressure
//
// Alarms are never dropped. Enqueue waits only for the disk. The queue is
// bounded by time rather than length: non-urgent deliveries expire, urgent
// ones stay until delivered, and shelterwatch_notify_queue_depth shows a
// channel that stopped taking them. Pending deliveries are held in memory
// too (about 1 KB each).
package notify
