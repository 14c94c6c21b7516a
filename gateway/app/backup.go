package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/shelterwatch/shelterwatch/gateway/backup"
	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/internal/audit"
)

// ErrBackupRunning: a backup was asked for while another was being made.
var ErrBackupRunning = errors.New("a backup is already being made; try again when it is done")

// Backup writes a backup of the running gateway to w (see package
// backup): consistent while readings keep arriving. With a passphrase the
// config's secret files are in it, encrypted. by is who asked; the backup
// is recorded in the audit log. One backup runs at a time.
func (a *App) Backup(ctx context.Context, w io.Writer, passphrase, by string) (backup.Manifest, error) {
	if !a.backupMu.TryLock() {
		return backup.Manifest{}, ErrBackupRunning
	}
	defer a.backupMu.Unlock()
	scratch, err := MakeScratch(a.cfg)
	if err != nil {
		return backup.Manifest{}, err
	}
	defer os.RemoveAll(scratch)
	m, err := backup.Write(ctx, w, a.backupSource(scratch), backup.Options{Passphrase: passphrase, By: by})
	if err != nil {
		return m, err
	}
	secrets := "without secrets"
	if len(m.Secrets) > 0 {
		secrets = fmt.Sprintf("with %d secret files, encrypted", len(m.Secrets))
	}
	if err := a.Audit.Append(audit.Entry{Action: audit.ActionBackupMade, By: by,
		Comment: fmt.Sprintf("backup of readings through %d, %s", m.Store.ReadingsThrough, secrets)}); err != nil {
		a.log.Error("backup: record the backup in the audit log", "err", err)
	}
	a.log.Info("backup: made", "by", by, "readings_through", m.Store.ReadingsThrough, "secrets", len(m.Secrets))
	return m, nil
}

// scratchPattern names a backup's scratch directory beside the store.
const scratchPattern = ".backup-*"

// MakeScratch makes the directory a backup's store checkpoint goes into.
// Its tables are hard links, so it is best beside the store, on the same
// file system (the packaged layout: /var/lib/shelterwatch/store); where
// the store's parent is not writable (store.dir is the state directory
// itself) it goes into alarms.dir, and the tables are copied.
func MakeScratch(c *config.Config) (string, error) {
	d, err := os.MkdirTemp(filepath.Dir(c.Store.Dir), scratchPattern)
	if err == nil {
		return d, nil
	}
	d, err2 := os.MkdirTemp(c.Alarms.Dir, scratchPattern)
	if err2 != nil {
		return "", fmt.Errorf("backup: a scratch directory beside the store (%v) or in alarms.dir: %w", err, err2)
	}
	return d, nil
}

// removeStaleScratch deletes the scratch directories a backup cut short
// by a crash left beside the store: their hard links would keep deleted
// tables' space forever. Called once the store is open, so that no
// backup of the stopped gateway (which holds the store) is running.
func (a *App) removeStaleScratch() {
	stale, _ := filepath.Glob(filepath.Join(filepath.Dir(a.cfg.Store.Dir), scratchPattern))
	inAlarms, _ := filepath.Glob(filepath.Join(a.cfg.Alarms.Dir, scratchPattern))
	for _, d := range append(stale, inAlarms...) {
		if err := os.RemoveAll(d); err != nil {
			a.log.Warn("backup: remove a scratch directory left by an interrupted backup", "dir", d, "err", err)
		} else {
			a.log.Info("backup: removed a scratch directory left by an interrupted backup", "dir", d)
		}
	}
}

func (a *App) backupSource(scratch string) backup.Source {
	c := a.cfg
	return backup.Source{
		Facility: c.Facility.ID, FacilityName: c.Facility.Name, Version: Version,
		ConfigPath: c.Path(), ConfigFiles: c.PublicFiles(),
		SecretFiles: SecretFilesToBackUp(c),
		Store:       a.Store, Audit: a.Audit,
		AlarmsDir: c.Alarms.Dir, UsersFile: c.UsersPath(),
		Settle: func(ctx context.Context) error {
			if err := a.Rules.Save(ctx); err != nil {
				return err
			}
			return a.Hazards.Save(ctx)
		},
		Scratch: scratch,
	}
}

// SecretFilesToBackUp is the config's secret files without the nightly
// backup's passphrase (a backup does not carry its own key).
func SecretFilesToBackUp(c *config.Config) []string {
	out := slices.DeleteFunc(c.SecretFiles(), func(f string) bool { return f == c.Backup.PassphraseFile })
	slices.Sort(out)
	return slices.Compact(out)
}
