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
	// The checkpoint's tables are hard links: the scratch directory must
	// be on the store's file system, beside it (the service may write
	// there: it is the state directory).
	scratch, err := os.MkdirTemp(filepath.Dir(a.cfg.Store.Dir), ".backup-")
	if err != nil {
		return backup.Manifest{}, fmt.Errorf("backup: scratch directory beside the store: %w", err)
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
