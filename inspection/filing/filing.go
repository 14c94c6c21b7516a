// Package filing files the summary reports (inspection/report): it
// generates them when a reporting period completes (the schedule) and
// when someone asks, keeps each one exactly as generated (its JSON for
// the console's printable page and the CSV tables, and its XLSX for the
// department), and mails it with its XLSX attached to the configured
// list through the server of an e-mail notification channel.
//
// A kept report never changes: the figures an inspector signed are the
// figures the department received. Generating again makes another one.
//
// # Concurrency and backpressure
//
// A Service is safe for concurrent use. One report is generated at a
// time (each reads a period of the audit log and the store: bounded
// memory matters more on a small board than a second report's speed);
// another request waits for it or for its own context. Run, the
// Service's one goroutine, checks the schedule and retries mails that
// failed, with a growing delay, until they are sent or refused for good.
package filing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shelterwatch/shelterwatch/inspection/report"
	"github.com/shelterwatch/shelterwatch/internal/atomicfile"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/rules/notify"
)

// Files of a kept report, in its folder.
const (
	entryFile = "entry.json"
	jsonFile  = "report.json"
	xlsxFile  = "report.xlsx"
)

// Audit actions.
const (
	ActionGenerated  = "report_generated"
	ActionMailed     = "report_mailed"
	ActionMailFailed = "report_mail_failed"
)

// BySchedule is who generates scheduled reports.
const BySchedule = "schedule"

// DefaultKeep is how many reports are kept by default.
const DefaultKeep = 60

// maxMailAttempts bounds the retries of a mail (about two days).
const maxMailAttempts = 12

// Generator builds the report of a period.
type Generator func(ctx context.Context, p report.Period) (*report.Report, error)

// Mailer sends a mail through an e-mail channel (*notify.Outbox).
type Mailer interface {
	SendMail(ctx context.Context, channel string, m notify.Mail) error
}

// Auditor is the audit log.
type Auditor interface {
	Append(entries ...audit.Entry) error
}

// Options configure a Service.
type Options struct {
	// Dir holds one folder per kept report.
	Dir      string
	Generate Generator
	// Location is the facility's time zone (periods are its months).
	Location *time.Location
	// Facility is the facility's id, in file names and mail subjects.
	Facility string
	// Schedule lists the period kinds generated when a period completes.
	Schedule []string
	// Mail, MailChannel and MailTo: where reports are mailed (none when
	// MailTo is empty).
	Mail        Mailer
	MailChannel string
	MailTo      []string
	// Keep is how many reports are kept, newest first (DefaultKeep).
	Keep       int
	Audit      Auditor
	CheckEvery time.Duration // default 10m
	Now        func() time.Time
	Logger     *slog.Logger
}

// Entry describes a kept report.
type Entry struct {
	ID        string        `json:"id"`
	Period    report.Period `json:"period"`
	Generated time.Time     `json:"generated"`
	// By is who asked for it (BySchedule for the schedule).
	By string `json:"by"`
	// XLSXBytes is the size of the spreadsheet.
	XLSXBytes int `json:"xlsx_bytes"`
	// Mail: when it was sent (zero: not yet), the last error, attempts.
	MailedAt     time.Time `json:"mailed_at,omitzero"`
	MailError    string    `json:"mail_error,omitempty"`
	MailAttempts int       `json:"mail_attempts,omitempty"`
	MailGaveUp   bool      `json:"mail_gave_up,omitempty"`
	// lastAttempt is when the mail was last tried (not kept: after a
	// restart the next attempt is due at once).
	lastAttempt time.Time
}

// Errors the API maps to its answers.
var (
	ErrNotFound = errors.New("no such report")
	ErrBadKind  = errors.New("unknown period kind")
)

// Service files the reports.
type Service struct {
	opts Options
	log  *slog.Logger
	gen  chan struct{} // one generation at a time
	// since is when the Service first ran here.
	since time.Time

	mu      sync.Mutex
	entries []Entry // newest first
}

// New opens the reports kept in opts.Dir.
func New(opts Options) (*Service, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	if opts.CheckEvery <= 0 {
		opts.CheckEvery = 10 * time.Minute
	}
	for _, k := range opts.Schedule {
		if _, err := report.PeriodContaining(k, opts.Now(), opts.Location); err != nil {
			return nil, fmt.Errorf("filing: schedule: %w", err)
		}
	}
	// Reports name residents' rooms and supervisors: private (0700).
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("filing: %w", err)
	}
	first, err := since(opts.Dir, opts.Now())
	if err != nil {
		return nil, err
	}
	s := &Service{opts: opts, log: opts.Logger, gen: make(chan struct{}, 1), since: first}
	des, err := os.ReadDir(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("filing: %w", err)
	}
	for _, de := range des {
		if !de.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(opts.Dir, de.Name(), entryFile))
		if err != nil {
			// A report whose generation was cut short: no entry, not kept.
			if errors.Is(err, fs.ErrNotExist) {
				_ = os.RemoveAll(filepath.Join(opts.Dir, de.Name()))
				continue
			}
			return nil, fmt.Errorf("filing: %w", err)
		}
		var e Entry
		if err := json.Unmarshal(b, &e); err != nil || e.ID != de.Name() {
			return nil, fmt.Errorf("filing: %s: not a report entry", filepath.Join(opts.Dir, de.Name(), entryFile))
		}
		s.entries = append(s.entries, e)
	}
	s.sortLocked()
	return s, nil
}

func (s *Service) sortLocked() {
	slices.SortFunc(s.entries, func(a, b Entry) int { return b.Generated.Compare(a.Generated) })
}

// List returns the kept reports, newest first.
func (s *Service) List() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.entries)
}

// idRE is what a report id looks like (it is a folder name).
var idRE = regexp.MustCompile(`^[a-z]+-[0-9]{8}-[0-9]{8}T[0-9]{6}(-[0-9]+)?$`)

// Get returns a kept report's entry.
func (s *Service) Get(id string) (Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		if e.ID == id {
			return e, nil
		}
	}
	return Entry{}, ErrNotFound
}

// Report returns a kept report as generated.
func (s *Service) Report(id string) (*report.Report, error) {
	b, err := s.file(id, jsonFile)
	if err != nil {
		return nil, err
	}
	var r report.Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("filing: report %s: %w", id, err)
	}
	return &r, nil
}

// XLSX returns a kept report's spreadsheet and its file name.
func (s *Service) XLSX(id string) ([]byte, string, error) {
	b, err := s.file(id, xlsxFile)
	if err != nil {
		return nil, "", err
	}
	return b, s.fileName(id), nil
}

func (s *Service) fileName(id string) string {
	return fmt.Sprintf("shelterwatch-%s-%s.xlsx", s.opts.Facility, id)
}

func (s *Service) file(id, name string) ([]byte, error) {
	if _, err := s.Get(id); err != nil || !idRE.MatchString(id) {
		return nil, ErrNotFound
	}
	b, err := os.ReadFile(filepath.Join(s.opts.Dir, id, name))
	if err != nil {
		return nil, fmt.Errorf("filing: report %s: %w", id, err)
	}
	return b, nil
}

// Generate generates, keeps and (when mail is configured) mails the
// report of the period of kind containing ref (or, with last, the last
// complete one before ref), on behalf of by.
func (s *Service) Generate(ctx context.Context, kind string, ref time.Time, last bool, by string) (Entry, error) {
	var p report.Period
	var err error
	if last {
		p, err = report.LastCompletePeriod(kind, ref, s.opts.Location)
	} else {
		p, err = report.PeriodContaining(kind, ref, s.opts.Location)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %v", ErrBadKind, err)
	}
	e, err := s.generate(ctx, p, by)
	if err != nil {
		return Entry{}, err
	}
	s.mail(ctx, e.ID)
	return s.Get(e.ID)
}

func (s *Service) generate(ctx context.Context, p report.Period, by string) (Entry, error) {
	select {
	case s.gen <- struct{}{}:
	case <-ctx.Done():
		return Entry{}, ctx.Err()
	}
	defer func() { <-s.gen }()
	r, err := s.opts.Generate(ctx, p)
	if err != nil {
		return Entry{}, fmt.Errorf("filing: generate %s report: %w", p.Kind, err)
	}
	var x bytes.Buffer
	if err := r.XLSX(&x); err != nil {
		return Entry{}, fmt.Errorf("filing: %w", err)
	}
	js, err := json.Marshal(r)
	if err != nil {
		return Entry{}, fmt.Errorf("filing: encode report: %w", err)
	}
	e := Entry{Period: r.Period, Generated: r.Generated, By: by, XLSXBytes: x.Len()}
	e.ID = fmt.Sprintf("%s-%s-%s", p.Kind, p.From.In(s.opts.Location).Format("20060102"), r.Generated.In(s.opts.Location).Format("20060102T150405"))
	s.mu.Lock()
	for n := 2; s.hasLocked(e.ID); n++ {
		e.ID = fmt.Sprintf("%s-%s-%s-%d", p.Kind, p.From.In(s.opts.Location).Format("20060102"), r.Generated.In(s.opts.Location).Format("20060102T150405"), n)
	}
	s.mu.Unlock()
	dir := filepath.Join(s.opts.Dir, e.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Entry{}, fmt.Errorf("filing: %w", err)
	}
	for name, b := range map[string][]byte{jsonFile: js, xlsxFile: x.Bytes()} {
		if err := atomicfile.Write(filepath.Join(dir, name), b); err != nil {
			_ = os.RemoveAll(dir)
			return Entry{}, fmt.Errorf("filing: keep report: %w", err)
		}
	}
	// The entry last: a folder without one is a report cut short.
	if err := s.writeEntry(e); err != nil {
		_ = os.RemoveAll(dir)
		return Entry{}, err
	}
	s.mu.Lock()
	s.entries = append(s.entries, e)
	s.sortLocked()
	var drop []Entry
	if len(s.entries) > s.opts.Keep {
		drop = s.entries[s.opts.Keep:]
		s.entries = slices.Clone(s.entries[:s.opts.Keep])
	}
	s.mu.Unlock()
	for _, d := range drop {
		_ = os.RemoveAll(filepath.Join(s.opts.Dir, d.ID))
	}
	s.audit(audit.Entry{Time: e.Generated, Action: ActionGenerated, By: by,
		Detail: fmt.Sprintf("%s: %s report %s (%s)", e.ID, p.Kind, p.Label.EN, p.Label.ZH)})
	s.log.Info("report generated", "report", e.ID, "by", by)
	return e, nil
}

func (s *Service) hasLocked(id string) bool {
	return slices.ContainsFunc(s.entries, func(e Entry) bool { return e.ID == id })
}

func (s *Service) writeEntry(e Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("filing: encode entry: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(s.opts.Dir, e.ID, entryFile), b); err != nil {
		return fmt.Errorf("filing: keep report entry: %w", err)
	}
	return nil
}

func (s *Service) audit(e audit.Entry) {
	if s.opts.Audit == nil {
		return
	}
	if err := s.opts.Audit.Append(e); err != nil {
		s.log.Error("filing: write to the audit log", "action", e.Action, "err", err)
	}
}

// sinceFile records when the Service first ran: the schedule files only
// periods that end after it (a new gateway does not file empty reports
// of periods before it was installed).
const sinceFile = "since"

// since returns when the Service first ran in opts.Dir, recording now
// the first time.
func since(dir string, now time.Time) (time.Time, error) {
	p := filepath.Join(dir, sinceFile)
	b, err := os.ReadFile(p)
	if err == nil {
		t, perr := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
		if perr == nil {
			return t, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, fmt.Errorf("filing: %w", err)
	}
	if err := atomicfile.Write(p, []byte(now.UTC().Format(time.RFC3339Nano)+"\n")); err != nil {
		return time.Time{}, fmt.Errorf("filing: %w", err)
	}
	return now, nil
}
