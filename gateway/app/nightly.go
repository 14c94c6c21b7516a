package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/gateway/backup"
	"github.com/shelterwatch/shelterwatch/ingest/health"
)

// BackupSuffix ends the name of every backup file the gateway writes.
const BackupSuffix = ".swbk"

// nightlyBackups writes a backup into backup.dir every night at
// backup.at (the facility's time) until ctx ends. A failure is the
// fault of gateway.backup (the backup-failed alarm) until a backup
// succeeds.
func (a *App) nightlyBackups(ctx context.Context) error {
	at, err := a.cfg.Backup.BackupAt()
	if err != nil {
		return err
	}
	for {
		next := nextDaily(time.Now().In(a.cfg.Facility.Location), at)
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		a.nightlyOnce(ctx)
	}
}

// nightlyOnce makes the nightly backup and reports how it went.
func (a *App) nightlyOnce(ctx context.Context) {
	p, err := a.NightlyBackup(ctx)
	switch {
	case err != nil && ctx.Err() != nil:
	case err != nil:
		a.log.Error("backup: the nightly backup failed", "dir", a.cfg.Backup.Dir, "err", err)
		a.Health.Set(health.BackupDevice, "the nightly backup failed: "+err.Error())
	default:
		a.log.Info("backup: nightly backup written", "file", p)
		a.Health.Set(health.BackupDevice, health.OK)
	}
}

// nextDaily is the first time after now at the time of day at, in now's
// location (a day without that time, at a DST change, takes the next).
func nextDaily(now time.Time, at time.Duration) time.Time {
	y, m, d := now.Date()
	next := time.Date(y, m, d, int(at/time.Hour), int(at%time.Hour/time.Minute), 0, 0, now.Location())
	if !next.After(now) {
		next = time.Date(y, m, d+1, int(at/time.Hour), int(at%time.Hour/time.Minute), 0, 0, now.Location())
	}
	return next
}

// NightlyBackup writes one backup into backup.dir, checks it, and keeps
// the newest backup.keep of them. It returns the file written.
func (a *App) NightlyBackup(ctx context.Context) (string, error) {
	b := a.cfg.Backup
	pass := ""
	if b.PassphraseFile != "" {
		var err error
		if pass, err = backup.ReadPassphrase(b.PassphraseFile); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(b.Dir, 0o700); err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	name := fmt.Sprintf("%s-%s%s", a.cfg.Facility.ID, time.Now().In(a.cfg.Facility.Location).Format("20060102-150405"), BackupSuffix)
	final := filepath.Join(b.Dir, name)
	tmp := filepath.Join(b.Dir, "."+name+".partial")
	defer os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	_, err = a.Backup(ctx, f, pass, "gateway (nightly backup)")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	// A backup is only worth keeping if it reads back whole (a share that
	// dropped writes, a failing stick).
	if _, err := backup.Inspect(tmp); err != nil {
		return "", fmt.Errorf("the backup written to %s does not read back: %w", b.Dir, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	return final, pruneBackups(b.Dir, a.cfg.Facility.ID, b.Keep)
}

// pruneBackups deletes the facility's nightly backups in dir beyond the
// newest keep (their names sort by time).
func pruneBackups(dir, facility string, keep int) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	var ours []string
	for _, de := range des {
		n := de.Name()
		// <facility>-YYYYmmdd-HHMMSS.swbk: not another facility's whose
		// id begins the same.
		if de.Type().IsRegular() && strings.HasPrefix(n, facility+"-") && strings.HasSuffix(n, BackupSuffix) &&
			len(n) == len(facility)+len("-20060102-150405")+len(BackupSuffix) {
			ours = append(ours, n)
		}
	}
	slices.Sort(ours)
	for len(ours) > keep {
		if err := os.Remove(filepath.Join(dir, ours[0])); err != nil {
			return fmt.Errorf("backup: delete an old backup: %w", err)
		}
		ours = ours[1:]
	}
	return nil
}
