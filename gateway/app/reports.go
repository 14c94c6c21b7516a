package app

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/availability"
	"github.com/shelterwatch/shelterwatch/inspection/filing"
	"github.com/shelterwatch/shelterwatch/inspection/report"
	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// newReports opens the kept summary reports and their schedule. A report
// reads the audit log and, for availability, the store.
func (a *App) newReports() error {
	cfg := a.cfg
	hc, err := cfg.HazardConfig(a.configuredModels())
	if err != nil {
		return fmt.Errorf("app: reports: %w", err)
	}
	src := report.Facility{ID: cfg.Facility.ID, Name: cfg.Facility.Name, NameZH: cfg.Facility.NameZH, Location: cfg.Facility.Location,
		Zones: hc.Zones, Devices: hc.Devices, Cameras: hc.Cameras}
	opts := report.Options{Facility: src, Audit: a.Audit, DepartmentLevel: cfg.Reports.DepartmentLevel,
		SupervisedTag: cfg.Reports.SupervisedTag, ColdSeason: hc.ColdSeason, HotSeason: hc.HotSeason,
		Availability: func(ctx context.Context, dev facility.Device, from, end time.Time) ([]facility.Segment, error) {
			return availability.Timeline(ctx, a.Store, availability.DeviceSeries(a.Store, dev.ID), from, end, dev.OfflineAfter)
		}}
	var mailer filing.Mailer
	if a.Outbox != nil {
		mailer = a.Outbox
	}
	a.Reports, err = filing.New(filing.Options{
		Dir: filepath.Join(cfg.Alarms.Dir, "reports"), Location: cfg.Facility.Location, Facility: cfg.Facility.ID,
		Generate: func(ctx context.Context, p report.Period) (*report.Report, error) {
			return report.Generate(ctx, opts, p)
		},
		Schedule: cfg.Reports.Schedule, Mail: mailer, MailChannel: cfg.Reports.MailChannel, MailTo: cfg.Reports.MailTo,
		Keep: cfg.Reports.Keep, Audit: a.Audit, Logger: a.log,
	})
	if err != nil {
		return fmt.Errorf("app: reports: %w", err)
	}
	return nil
}
