package filing

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/inspection/report"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/rules/notify"
)

var shanghai, _ = time.LoadLocation("Asia/Shanghai")

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// outbox records mails and fails the first fail of them.
type outbox struct {
	mu    sync.Mutex
	fail  int
	perm  bool
	mails []notify.Mail
}

func (o *outbox) SendMail(_ context.Context, channel string, m notify.Mail) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if channel != "duty-mail" {
		return errors.New("wrong channel " + channel)
	}
	if o.fail > 0 {
		o.fail--
		if o.perm {
			return notify.Permanent(errors.New("550 mailbox unknown"))
		}
		return errors.New("421 try again later")
	}
	o.mails = append(o.mails, m)
	return nil
}

func (o *outbox) sent() []notify.Mail {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.mails)
}

type auditRec struct {
	mu sync.Mutex
	es []audit.Entry
}

func (a *auditRec) Append(es ...audit.Entry) error {
	a.mu.Lock()
	a.es = append(a.es, es...)
	a.mu.Unlock()
	return nil
}

func (a *auditRec) actions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.es {
		out = append(out, e.Action)
	}
	return out
}

func newService(t *testing.T, dir string, c *clock, ob *outbox, au *auditRec, keep int) *Service {
	t.Helper()
	// The report itself is inspection/report's subject: here an empty
	// one of the period is enough.
	gen := func(_ context.Context, p report.Period) (*report.Report, error) {
		return &report.Report{Generated: c.now(), Facility: report.FacilityInfo{ID: "east", Timezone: "Asia/Shanghai"}, Period: p, End: p.To}, nil
	}
	s, err := New(Options{Dir: dir, Generate: gen, Location: shanghai, Facility: "east", Schedule: []string{report.KindMonth},
		Mail: ob, MailChannel: "duty-mail", MailTo: []string{"dept@county.example"}, Keep: keep, Audit: au, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSchedule: a new gateway files no report of a month before it was
// installed; the month it was installed in is filed once it ends, once,
// and mailed; a restart does not file it again.
func TestSchedule(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Date(2026, 3, 14, 10, 0, 0, 0, shanghai)}
	ob, au := &outbox{}, &auditRec{}
	s := newService(t, dir, c, ob, au, 10)
	s.Check(context.Background())
	if n := len(s.List()); n != 0 {
		t.Fatalf("filed %d reports of months before the gateway was here", n)
	}
	c.set(time.Date(2026, 4, 1, 0, 5, 0, 0, shanghai))
	s.Check(context.Background())
	s.Check(context.Background())
	l := s.List()
	if len(l) != 1 || l[0].By != BySchedule || !l[0].Period.From.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, shanghai)) || l[0].MailedAt.IsZero() {
		t.Fatalf("after March: %+v", l)
	}
	if m := ob.sent(); len(m) != 1 || len(m[0].Attachments) != 1 || m[0].Attachments[0].Name != "shelterwatch-east-"+l[0].ID+".xlsx" ||
		string(m[0].Attachments[0].Data[:2]) != "PK" {
		t.Fatalf("mails = %+v", m)
	}
	// A restart reads the kept report and files nothing new.
	s2 := newService(t, dir, c, ob, au, 10)
	s2.Check(context.Background())
	if l2 := s2.List(); len(l2) != 1 || l2[0].ID != l[0].ID || l2[0].MailedAt.IsZero() {
		t.Fatalf("after a restart: %+v", l2)
	}
	if x, name, err := s2.XLSX(l[0].ID); err != nil || len(x) != l[0].XLSXBytes || name == "" {
		t.Fatalf("kept xlsx: %d bytes, %q, %v", len(x), name, err)
	}
	if got := au.actions(); !slices.Equal(got, []string{ActionGenerated, ActionMailed}) {
		t.Fatalf("audit = %v", got)
	}
}

// TestMailRetries: a mail server that is down gets the report later,
// with a growing delay; one that refuses for good is given up on.
func TestMailRetries(t *testing.T) {
	c := &clock{t: time.Date(2026, 5, 3, 10, 0, 0, 0, shanghai)}
	ob, au := &outbox{fail: 2}, &auditRec{}
	s := newService(t, t.TempDir(), c, ob, au, 10)
	e, err := s.Generate(context.Background(), report.KindMonth, c.now(), true, "wu.inspector")
	if err != nil {
		t.Fatal(err)
	}
	if e.MailedAt.IsZero() == false || e.MailAttempts != 1 || e.MailError == "" {
		t.Fatalf("after a failed mail: %+v", e)
	}
	c.set(c.now().Add(time.Minute))
	s.Check(context.Background())
	if e, _ = s.Get(e.ID); e.MailAttempts != 1 {
		t.Fatalf("retried before its delay: %+v", e)
	}
	for i := 0; i < 2; i++ {
		c.set(c.now().Add(5 * time.Minute))
		s.Check(context.Background())
	}
	if e, _ = s.Get(e.ID); e.MailedAt.IsZero() || e.MailAttempts != 3 || e.MailError != "" || len(ob.sent()) != 1 {
		t.Fatalf("after the server came back: %+v", e)
	}

	perm := &outbox{fail: 100, perm: true}
	s = newService(t, t.TempDir(), c, perm, au, 10)
	e, err = s.Generate(context.Background(), report.KindMonth, c.now(), false, "wu.inspector")
	if err != nil {
		t.Fatal(err)
	}
	if !e.MailGaveUp || e.MailAttempts != 1 {
		t.Fatalf("a refused mail: %+v", e)
	}
}

// TestKeep: past Keep, the oldest reports are deleted with their files;
// a folder left by a generation cut short is cleaned up at start.
func TestKeep(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Date(2026, 6, 1, 10, 0, 0, 0, shanghai)}
	s := newService(t, dir, c, &outbox{}, &auditRec{}, 2)
	var ids []string
	for i := 0; i < 3; i++ {
		c.set(c.now().Add(time.Hour))
		e, err := s.Generate(context.Background(), report.KindQuarter, c.now(), true, "wu.inspector")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	l := s.List()
	if len(l) != 2 || l[0].ID != ids[2] || l[1].ID != ids[1] {
		t.Fatalf("kept %+v, want the newest two of %v", l, ids)
	}
	if _, err := os.Stat(filepath.Join(dir, ids[0])); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the oldest report's folder is still there: %v", err)
	}
	if _, err := s.Report(ids[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the oldest report: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "quarter-20260101-20260601T180000"), 0o700); err != nil {
		t.Fatal(err)
	}
	s = newService(t, dir, c, &outbox{}, &auditRec{}, 2)
	if _, err := os.Stat(filepath.Join(dir, "quarter-20260101-20260601T180000")); !errors.Is(err, os.ErrNotExist) || len(s.List()) != 2 {
		t.Fatalf("a cut-short report was kept: %v %+v", err, s.List())
	}
	if _, err := s.Report("../etc"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a path as an id: %v", err)
	}
	if _, err := s.Generate(context.Background(), "week", c.now(), false, "x"); !errors.Is(err, ErrBadKind) {
		t.Fatalf("unknown kind: %v", err)
	}
}
