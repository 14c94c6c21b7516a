package config

import (
	"fmt"
	"path/filepath"
	"time"
)

// Backup configures backups: the control socket `shelter-gateway backup`
// asks the running gateway through, and the optional nightly backup.
type Backup struct {
	// Socket is the control socket (a Unix socket, 0600: only the
	// service's user and root reach it). Default control.sock in
	// alarms.dir.
	Socket string `yaml:"socket"`
	// Dir, when set, gets a backup every night at At (the facility's
	// time), named <facility>-<time>.swbk; the newest Keep are kept.
	// Another disk than the store's, or a mounted share, is what makes
	// it worth having. Default "" (no nightly backup).
	Dir string `yaml:"dir"`
	// At is the time of day of the nightly backup, HH:MM. Default 03:30.
	At string `yaml:"at"`
	// Keep is how many nightly backups are kept. Default 7.
	Keep int `yaml:"keep"`
	// PassphraseFile, when set, adds the secret files to the nightly
	// backups, encrypted with the passphrase in it (at least 12
	// characters). Default "" (no secrets).
	PassphraseFile string `yaml:"passphrase_file"`
}

// Defaults of the backup section.
const (
	DefaultBackupAt   = "03:30"
	DefaultBackupKeep = 7
	// ControlSocketName is the control socket's name in alarms.dir.
	ControlSocketName = "control.sock"
)

func (c *Config) backupDefaults() {
	b := &c.Backup
	if b.At == "" {
		b.At = DefaultBackupAt
	}
	if !c.src.isSet("backup.keep") {
		b.Keep = DefaultBackupKeep
	}
}

// ControlSocket is the control socket's path: backup.socket, or
// control.sock in alarms.dir.
func (c *Config) ControlSocket() string {
	if c.Backup.Socket != "" {
		return c.Backup.Socket
	}
	return filepath.Join(c.Alarms.Dir, ControlSocketName)
}

// BackupAt is the nightly backup's time of day as hours and minutes.
func (b Backup) BackupAt() (time.Duration, error) {
	t, err := time.Parse("15:04", b.At)
	if err != nil {
		return 0, fmt.Errorf("want HH:MM, got %s", quote(b.At))
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// maxSocketPath is the longest path a Unix socket can have (sun_path).
const maxSocketPath = 107

func (v *validator) backup() {
	b := &v.c.Backup
	if s := v.c.ControlSocket(); len(s) > maxSocketPath {
		v.errorf("backup.socket", "%s has %d characters; a Unix socket's path has at most %d (set backup.socket to a shorter one)", quote(s), len(s), maxSocketPath)
	}
	if _, err := b.BackupAt(); err != nil {
		v.errorf("backup.at", "%v", err)
	}
	if b.Keep < 1 {
		v.errorf("backup.keep", "must be at least 1")
	}
	if b.PassphraseFile != "" && b.Dir == "" {
		v.errorf("backup.passphrase_file", "only for nightly backups: set backup.dir too")
	}
}
