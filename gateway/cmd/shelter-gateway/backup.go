package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/shelterwatch/shelterwatch/gateway/app"
	"github.com/shelterwatch/shelterwatch/gateway/backup"
	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/audit"
)

func loadConfig(cmd *cobra.Command, path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), err)
		return nil, errors.New("the config is invalid")
	}
	return cfg, nil
}

// passphrase reads --passphrase-file, or asks twice at a terminal.
func passphrase(cmd *cobra.Command, file string, confirm bool) (string, error) {
	if file != "" {
		return backup.ReadPassphrase(file)
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", errors.New("give the passphrase with --passphrase-file (standard input is not a terminal)")
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "Passphrase for the secrets (at least %d characters): ", backup.MinPassphrase)
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(cmd.ErrOrStderr())
	if err != nil {
		return "", err
	}
	if len(p) < backup.MinPassphrase {
		return "", fmt.Errorf("the passphrase has %d characters; at least %d are needed", len(p), backup.MinPassphrase)
	}
	if confirm {
		fmt.Fprint(cmd.ErrOrStderr(), "Again: ")
		q, err := term.ReadPassword(fd)
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", err
		}
		if string(q) != string(p) {
			return "", errors.New("the two passphrases differ")
		}
	}
	return string(p), nil
}

func backupCmd() *cobra.Command {
	var cfgPath, to, passFile string
	var withSecrets bool
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Back up the gateway (store, alarm state, hazard list, reports, accounts, audit log, config) to one file",
		Long: `Makes a consistent backup while the gateway runs, asking it through its
control socket (backup.socket; run as root or the service's user). When
no gateway runs on the config, the backup is made from the files directly.

The file holds every reading acknowledged before the backup began, the
InfluxDB forwarders' positions, the alarm state with its acknowledgements,
the hazard list, the filed reports, the console's accounts (password hashes),
the audit log and the config file. The secret files the config names
(passwords, tokens, private keys) are only in it with --with-secrets,
encrypted with a passphrase. The file is checked after it is written; it is
kept only when whole.

Restore it with "shelter-gateway restore".`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, cfgPath)
			if err != nil {
				return err
			}
			pass := ""
			if withSecrets {
				if pass, err = passphrase(cmd, passFile, true); err != nil {
					return err
				}
			} else if passFile != "" {
				return errors.New("--passphrase-file is for --with-secrets")
			}
			m, size, err := writeBackup(cmd.Context(), cfg, to, pass)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "backup of %s (%s) written to %s (%s)\n", m.Facility, m.FacilityName, to, humanBytes(size))
			fmt.Fprintf(out, "readings: %d to %d\n", m.Store.FirstSeq, m.Store.ReadingsThrough)
			if len(m.Secrets) > 0 {
				fmt.Fprintf(out, "secrets: %d files, encrypted with the passphrase\n", len(m.Secrets))
			} else {
				fmt.Fprintln(out, "secrets: none (add --with-secrets to include them, encrypted)")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "the gateway's config file")
	cmd.Flags().StringVar(&to, "to", "", "the backup file to write (kept private: mode 0600)")
	cmd.Flags().BoolVar(&withSecrets, "with-secrets", false, "include the secret files the config names, encrypted with a passphrase")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "file whose first line is the passphrase (default: asked at the terminal)")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("to")
	cmd.AddCommand(backupCheckCmd())
	return cmd
}

// writeBackup writes the backup to to through a temporary file beside
// it, checks it, and renames it into place.
func writeBackup(ctx context.Context, cfg *config.Config, to, pass string) (backup.Manifest, int64, error) {
	tmp := to + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return backup.Manifest{}, 0, err
	}
	defer os.Remove(tmp)
	err = app.RequestBackup(ctx, cfg.ControlSocket(), f, pass)
	if errors.Is(err, app.ErrNotRunning) {
		err = offlineBackup(ctx, cfg, f, pass)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return backup.Manifest{}, 0, err
	}
	m, err := backup.Inspect(tmp)
	if err != nil {
		return m, 0, fmt.Errorf("the backup did not check out, so it was not kept: %w", err)
	}
	if err := os.Rename(tmp, to); err != nil {
		return m, 0, err
	}
	fi, err := os.Stat(to)
	if err != nil {
		return m, 0, err
	}
	return m, fi.Size(), nil
}

// offlineBackup backs up a stopped gateway from its files. The store's
// lock keeps it from running beside a gateway that started meanwhile.
// Whatever opening the store and the audit log wrote goes back to their
// directories' owner (the service's user) afterwards.
func offlineBackup(ctx context.Context, cfg *config.Config, w io.Writer, pass string) (err error) {
	st, err := store.Open(store.Options{Dir: cfg.Store.Dir})
	if err != nil {
		return fmt.Errorf("no gateway answers on %s, and its store cannot be opened: %w", cfg.ControlSocket(), err)
	}
	defer func() {
		cerr := st.Close()
		if err == nil {
			err = cerr
		}
		if gerr := backup.GiveBack(cfg.Store.Dir); err == nil {
			err = gerr
		}
	}()
	al, err := audit.Open(cfg.Alarms.AuditPath(), audit.Options{})
	if err != nil {
		return err
	}
	defer func() {
		al.Close()
		if gerr := backup.GiveBack(filepath.Dir(cfg.Alarms.AuditPath())); err == nil {
			err = gerr
		}
	}()
	scratch, err := app.MakeScratch(cfg)
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	src := backup.Source{
		Facility: cfg.Facility.ID, FacilityName: cfg.Facility.Name, Version: app.Version,
		ConfigPath: cfg.Path(), ConfigFiles: cfg.PublicFiles(),
		SecretFiles: app.SecretFilesToBackUp(cfg),
		Store:       st, Audit: al, AlarmsDir: cfg.Alarms.Dir, UsersFile: cfg.UsersPath(), Scratch: scratch,
	}
	m, err := backup.Write(ctx, w, src, backup.Options{Passphrase: pass, By: who()})
	if err != nil {
		return err
	}
	return al.Append(audit.Entry{Action: audit.ActionBackupMade, By: who(),
		Comment: fmt.Sprintf("backup of the stopped gateway, readings through %d", m.Store.ReadingsThrough)})
}

func backupCheckCmd() *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check a backup file against its checksums and print what it holds",
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := backup.Inspect(from)
			if err != nil {
				return err
			}
			printManifest(cmd.OutOrStdout(), m)
			fmt.Fprintln(cmd.OutOrStdout(), "ok")
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the backup file")
	_ = cmd.MarkFlagRequired("from")
	return cmd
}

func printManifest(out io.Writer, m backup.Manifest) {
	fmt.Fprintf(out, "facility: %s (%s)\n", m.Facility, m.FacilityName)
	fmt.Fprintf(out, "made: %s by %s with gateway %s\n", m.Created.Format("2006-01-02 15:04:05 MST"), m.By, m.Gateway)
	fmt.Fprintf(out, "readings: %d to %d\n", m.Store.FirstSeq, m.Store.ReadingsThrough)
	names := make([]string, 0, len(m.Store.Cursors))
	for n := range m.Store.Cursors {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(out, "  consumer %s at %d\n", n, m.Store.Cursors[n])
	}
	fmt.Fprintf(out, "config: %s\n", m.ConfigPath)
	if len(m.Secrets) > 0 {
		fmt.Fprintf(out, "secrets (encrypted): %s\n", strings.Join(m.Secrets, ", "))
	} else {
		fmt.Fprintln(out, "secrets: none")
	}
}

func restoreCmd() *cobra.Command {
	var cfgPath, from, passFile string
	var withConfig, otherFacility, replace bool
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Restore a backup onto a stopped or new gateway",
		Long: `Restores a backup made with "shelter-gateway backup" into the directories the
config names (store.dir, alarms.dir), with the gateway stopped. The whole file
is checked first; each directory is written beside its place and renamed
into it, so a restore cut short changes nothing.

On new hardware, --with-config first puts the backup's config file at
--config (and its rules file back where it was); with --passphrase-file (or
the passphrase typed at the terminal when the backup holds secrets) also the
secret files. Whatever a restore replaces is moved aside with the suffix
.before-restore-<time>, never deleted; data already in the directories is
only replaced with --replace.

A backup of another facility is refused unless --other-facility is given.
The InfluxDB forwarders go on from the positions in the backup: no reading
is skipped; those the old gateway sent after the backup was made are sent
again as identical points, which InfluxDB keeps once. On a planned move,
stop the old gateway first and back it up then: the backup is complete.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if withConfig {
				m, err := backup.Inspect(from)
				if err != nil {
					return err
				}
				pass := ""
				if passFile != "" || (len(m.Secrets) > 0 && term.IsTerminal(int(os.Stdin.Fd()))) {
					if pass, err = passphrase(cmd, passFile, false); err != nil {
						return err
					}
				}
				wrote, skipped, err := backup.RestoreConfig(from, cfgPath, pass, time.Now())
				if err != nil {
					return err
				}
				for _, f := range wrote {
					fmt.Fprintf(out, "restored %s\n", f)
				}
				if len(skipped) > 0 {
					fmt.Fprintf(out, "not restored (outside the config's directory %s; copy them from the backup's machine yourself): %s\n",
						filepath.Dir(cfgPath), strings.Join(skipped, ", "))
				}
				if len(m.Secrets) > 0 && pass == "" {
					fmt.Fprintf(out, "secrets not restored (no passphrase): put these files in place yourself: %s\n", strings.Join(m.Secrets, ", "))
				}
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return errors.New("the config is invalid on this machine: fix it, then run restore again (without --with-config)")
			}
			if st, err := app.Status(cmd.Context(), cfg.ControlSocket()); err == nil {
				return fmt.Errorf("a gateway is running on this config (pid %d): stop it first (systemctl stop shelterwatch)", st.PID)
			}
			res, err := backup.Restore(cmd.Context(), from, backup.Target{
				StoreDir: cfg.Store.Dir, AlarmsDir: cfg.Alarms.Dir, AuditPath: cfg.Alarms.AuditPath(), UsersFile: cfg.UsersPath(),
			}, backup.RestoreOptions{Facility: cfg.Facility.ID, OtherFacility: otherFacility, Replace: replace, By: who()})
			if err != nil {
				return err
			}
			printManifest(out, res.Manifest)
			fmt.Fprintf(out, "restored store: readings %d to %d into %s\n", res.FirstSeq, res.LastSeq, cfg.Store.Dir)
			fmt.Fprintf(out, "restored alarm state, hazard list, reports, accounts and audit log into %s\n", cfg.Alarms.Dir)
			fmt.Fprintf(out, "audit log: %d entries verified, head %s\n", res.Audit.Chained, res.Audit.Head)
			for _, a := range res.MovedAside {
				fmt.Fprintf(out, "kept the data that was there in %s\n", a)
			}
			fmt.Fprintln(out, "ok: start the gateway (systemctl start shelterwatch)")
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "the gateway's config file (with --with-config: where to put the backup's)")
	cmd.Flags().StringVar(&from, "from", "", "the backup file")
	cmd.Flags().BoolVar(&withConfig, "with-config", false, "also restore the config file, its rules file and (with a passphrase) the secret files")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "file whose first line is the secrets' passphrase")
	cmd.Flags().BoolVar(&otherFacility, "other-facility", false, "restore a backup of another facility than the config's")
	cmd.Flags().BoolVar(&replace, "replace", false, "move data already in the directories aside and restore over it")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("from")
	return cmd
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
