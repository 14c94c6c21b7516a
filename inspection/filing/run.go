package filing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/inspection/report"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/rules/notify"
)

// Run files the scheduled reports and retries failed mails until ctx
// ends.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.CheckEvery)
	defer t.Stop()
	for {
		s.Check(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Check generates the reports the schedule says are due (a complete
// period without a scheduled report) and retries mails that are due.
func (s *Service) Check(ctx context.Context) {
	now := s.opts.Now()
	for _, kind := range s.opts.Schedule {
		p, err := report.LastCompletePeriod(kind, now, s.opts.Location)
		if err != nil {
			continue // checked in New
		}
		if !p.To.After(s.since) || s.filed(p) {
			continue // before the gateway was here, or done
		}
		e, err := s.generate(ctx, p, BySchedule)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("filing: scheduled report", "kind", kind, "period", p.Label.EN, "err", err)
			}
			continue
		}
		s.mail(ctx, e.ID)
	}
	for _, e := range s.List() {
		if s.mailDue(e, now) {
			s.mail(ctx, e.ID)
		}
	}
}

// filed reports whether the schedule already filed period p.
func (s *Service) filed(p report.Period) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		if e.By == BySchedule && e.Period.Kind == p.Kind && e.Period.From.Equal(p.From) {
			return true
		}
	}
	return false
}

// mailDue: a report not mailed yet whose next attempt is due (2, 4, 8 …
// minutes after the last, at most 8 hours apart).
func (s *Service) mailDue(e Entry, now time.Time) bool {
	if len(s.opts.MailTo) == 0 || s.opts.Mail == nil || !e.MailedAt.IsZero() || e.MailGaveUp || e.MailAttempts == 0 {
		return false
	}
	wait := min(time.Duration(1<<min(e.MailAttempts, 10))*time.Minute, 8*time.Hour)
	return !now.Before(e.lastAttempt.Add(wait))
}

// mail sends report id to the configured list with its XLSX attached.
func (s *Service) mail(ctx context.Context, id string) {
	if len(s.opts.MailTo) == 0 || s.opts.Mail == nil {
		return
	}
	e, err := s.Get(id)
	if err != nil {
		return
	}
	x, name, err := s.XLSX(id)
	if err != nil {
		s.log.Error("filing: mail report", "report", id, "err", err)
		return
	}
	p := e.Period
	m := notify.Mail{
		To:      s.opts.MailTo,
		ID:      "report-" + id,
		Subject: fmt.Sprintf("%s 安全情况汇总表 %s / Summary report %s", s.opts.Facility, p.Label.ZH, p.Label.EN),
		Body: fmt.Sprintf("%s 安全情况汇总表（%s）见附件。\n生成时间：%s，生成人：%s。\n\n"+
			"The summary report of %s for %s is attached.\nGenerated %s by %s.\n",
			s.opts.Facility, p.Label.ZH, e.Generated.In(s.opts.Location).Format("2006-01-02 15:04"), e.By,
			s.opts.Facility, p.Label.EN, e.Generated.In(s.opts.Location).Format("2006-01-02 15:04"), e.By),
		Attachments: []notify.Attachment{{Name: name, Data: x}},
	}
	err = s.opts.Mail.SendMail(ctx, s.opts.MailChannel, m)
	now := s.opts.Now()
	s.mu.Lock()
	i := s.indexLocked(id)
	if i < 0 {
		s.mu.Unlock()
		return
	}
	en := &s.entries[i]
	en.MailAttempts++
	en.lastAttempt = now
	if err == nil {
		en.MailedAt, en.MailError = now, ""
	} else {
		en.MailError = err.Error()
		en.MailGaveUp = notify.IsPermanent(err) || en.MailAttempts >= maxMailAttempts
	}
	snap := *en
	s.mu.Unlock()
	if werr := s.writeEntry(snap); werr != nil {
		s.log.Error("filing: keep mail state", "report", id, "err", werr)
	}
	to := strings.Join(s.opts.MailTo, ", ")
	if err == nil {
		s.audit(audit.Entry{Time: now, Action: ActionMailed, By: BySchedule, Detail: fmt.Sprintf("%s to %s", id, to)})
		s.log.Info("report mailed", "report", id, "to", to)
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	s.audit(audit.Entry{Time: now, Action: ActionMailFailed, By: BySchedule, Detail: fmt.Sprintf("%s to %s: %v", id, to, err)})
	s.log.Error("filing: mail report", "report", id, "attempt", snap.MailAttempts, "gave_up", snap.MailGaveUp, "err", err)
}

func (s *Service) indexLocked(id string) int {
	for i := range s.entries {
		if s.entries[i].ID == id {
			return i
		}
	}
	return -1
}
