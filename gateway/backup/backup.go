// Package backup writes and restores a facility gateway's backup: one
// file that holds everything needed to bring the facility back on new
// hardware — the store (every acknowledged reading, the forwarders'
// cursors, the dead letters), the alarm state, the hazard list, the filed
// reports, the console accounts, the audit log and the config — taken
// consistently while the gateway runs.
//
// # The file
//
// A gzip-compressed tar, so that standard tools can list it:
//
//	MANIFEST.json        first: what, whose, when (Manifest)
//	config/config.yaml   the config file the gateway runs with
//	config/file-N        the other files it names that are not secret:
//	                     its rules_file, certificates, CA certificates
//	alarms/state.json    the alarm state (open alarms, acknowledgements)
//	alarms/hazards.json  the hazard list
//	alarms/reports/…     the filed summary reports
//	users/users.json     the console's accounts (password hashes only)
//	store/…              a checkpoint of the store
//	audit/…              the audit log, every segment
//	secrets.age          only when asked: the secret files the config
//	                     names, encrypted with a passphrase (age, scrypt)
//	SHA256SUMS           last: the checksum of every entry above
//
// # Consistency
//
// Write takes its copies in an order that makes them agree: the alarm
// state and hazard list are saved first (Source.Settle), then read; the
// store checkpoint comes after them, so it holds every reading they have
// seen; the audit log is taken last, so it holds an entry for every action
// the state shows. Readings keep being acknowledged meanwhile: the
// checkpoint holds every one acknowledged before it began
// (Manifest.Store.ReadingsThrough).
//
// Notifications still waiting for delivery are not in a backup: restored
// days later they would arrive late and out of place. The restored alarm
// state keeps every open alarm open, and its escalation goes on from it.
package backup

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/audit"
)

// Format is the layout of the backup file this build writes and reads.
const Format = 1

// Kind names the file in its manifest.
const Kind = "shelterwatch-backup"

// Names of the entries in the file.
const (
	manifestName = "MANIFEST.json"
	sumsName     = "SHA256SUMS"
	configName   = "config/config.yaml"
	filePrefix   = "config/file-"
	usersName    = "users/users.json"
	secretsName  = "secrets.age"
	storePrefix  = "store/"
	alarmsPrefix = "alarms/"
	auditPrefix  = "audit/"
	reportsDir   = "reports"
)

// alarmFiles are the alarm directory's files a backup carries, besides
// the reports directory: the outbox and the control socket stay behind.
var alarmFiles = []string{"state.json", "hazards.json"}

// Manifest says what a backup holds. It is the file's first entry, so a
// restore can refuse a wrong file before reading the rest.
type Manifest struct {
	Kind    string    `json:"kind"`
	Format  int       `json:"format"`
	Created time.Time `json:"created"`
	// Facility is the facility's id; a restore onto another facility's
	// gateway is refused unless asked for.
	Facility     string `json:"facility"`
	FacilityName string `json:"facility_name,omitempty"`
	// Gateway is the version of the gateway that wrote the backup.
	Gateway string `json:"gateway_version"`
	// ConfigPath is where the config file was; ConfigFiles where the
	// other files it names were (entry config/file-N is ConfigFiles[N]).
	ConfigPath  string   `json:"config_path"`
	ConfigFiles []string `json:"config_files,omitempty"`
	Store       struct {
		// ReadingsThrough: every reading up to this sequence number was
		// acknowledged before the checkpoint and is in it.
		ReadingsThrough uint64            `json:"readings_through"`
		FirstSeq        uint64            `json:"first_seq"`
		Cursors         map[string]uint64 `json:"cursors"`
	} `json:"store"`
	// Secrets lists the secret files in secrets.age (empty: none).
	Secrets []string `json:"secrets,omitempty"`
	// By is who asked for the backup (for the audit log of the restore).
	By string `json:"by,omitempty"`
}

// Source is a running (or stopped) gateway as Write reads it.
type Source struct {
	Facility, FacilityName, Version string
	// ConfigPath is the config file; ConfigFiles the other files it
	// names that are not secret (rules file, certificates, CAs).
	ConfigPath  string
	ConfigFiles []string
	// SecretFiles are the files of secrets the config names; read only
	// when a passphrase is given.
	SecretFiles []string
	Store       *store.Store
	Audit       *audit.Log
	// AlarmsDir holds the alarm state, hazard list and reports; UsersFile
	// the console's accounts.
	AlarmsDir, UsersFile string
	// Settle writes the alarm state and hazard list to disk and returns
	// once they are there (nil when the gateway is stopped).
	Settle func(ctx context.Context) error
	// Scratch is an empty directory on the store's file system for the
	// checkpoint (its tables are hard-linked: no copy, no space).
	Scratch string
}

// Options tune Write.
type Options struct {
	// Passphrase, when set, adds the secret files, encrypted with it.
	Passphrase string
	// By is who asked (recorded in the manifest).
	By string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// MinPassphrase is the shortest passphrase accepted for secrets.
const MinPassphrase = 12

// scryptWorkFactor is age's scrypt cost (log2 N) for the secrets: 2^16
// takes 64 MiB and well under a second on a small board, inside the
// service's memory limit; age's default (2^18, 256 MiB) would not be.
const scryptWorkFactor = 16

// Write writes a backup of src to w and returns its manifest.
func Write(ctx context.Context, w io.Writer, src Source, opts Options) (Manifest, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Passphrase != "" && len(opts.Passphrase) < MinPassphrase {
		return Manifest{}, fmt.Errorf("backup: the passphrase has %d characters; at least %d are needed", len(opts.Passphrase), MinPassphrase)
	}
	cap, err := capture(ctx, src, opts)
	if err != nil {
		return Manifest{}, err
	}
	defer cap.close()
	aw := newArchive(w)
	if err := cap.write(ctx, aw); err != nil {
		return Manifest{}, err
	}
	if err := aw.finish(); err != nil {
		return Manifest{}, fmt.Errorf("backup: write: %w", err)
	}
	return cap.manifest, nil
}

// captured is everything a backup holds, taken in the order that makes it
// consistent; writing it out can then take its time.
type captured struct {
	manifest   Manifest
	config     []byte
	files      [][]byte // of manifest.ConfigFiles
	alarmFiles map[string][]byte
	users      []byte
	checkpoint string
	audit      *audit.Snapshot
	secrets    []byte // age-encrypted tar of the secret files
	alarmsDir  string
}

func (c *captured) close() {
	if c.audit != nil {
		c.audit.Close()
	}
	if c.checkpoint != "" {
		_ = os.RemoveAll(c.checkpoint)
	}
}

func capture(ctx context.Context, src Source, opts Options) (c *captured, err error) {
	c = &captured{alarmFiles: map[string][]byte{}, alarmsDir: src.AlarmsDir}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	m := &c.manifest
	m.Kind, m.Format, m.Created = Kind, Format, opts.Now().UTC()
	m.Facility, m.FacilityName, m.Gateway = src.Facility, src.FacilityName, src.Version
	m.ConfigPath, m.By = src.ConfigPath, opts.By
	if src.ConfigPath != "" { // "" for a gateway built in memory (the demo)
		if c.config, err = os.ReadFile(src.ConfigPath); err != nil {
			return nil, fmt.Errorf("backup: read the config: %w", err)
		}
	}
	for _, f := range src.ConfigFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("backup: read %s, which the config names: %w", f, err)
		}
		c.files = append(c.files, b)
		m.ConfigFiles = append(m.ConfigFiles, f)
	}
	if opts.Passphrase != "" {
		if c.secrets, err = sealSecrets(src.SecretFiles, opts.Passphrase); err != nil {
			return nil, err
		}
		m.Secrets = slices.Clone(src.SecretFiles)
	}
	if src.Settle != nil {
		if err := src.Settle(ctx); err != nil {
			return nil, fmt.Errorf("backup: save the alarm state and hazard list: %w", err)
		}
	}
	for _, name := range alarmFiles {
		b, err := os.ReadFile(filepath.Join(src.AlarmsDir, name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return nil, fmt.Errorf("backup: read %s: %w", name, err)
		}
		c.alarmFiles[name] = b
	}
	if c.users, err = os.ReadFile(src.UsersFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("backup: read the console's accounts: %w", err)
	}
	m.Store.ReadingsThrough = src.Store.LastSeq()
	m.Store.FirstSeq = src.Store.FirstSeq()
	m.Store.Cursors = src.Store.Cursors()
	c.checkpoint = filepath.Join(src.Scratch, "checkpoint")
	if err := src.Store.Checkpoint(c.checkpoint); err != nil {
		c.checkpoint = ""
		return nil, fmt.Errorf("backup: %w", err)
	}
	if c.audit, err = src.Audit.Snapshot(); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return c, nil
}

func (c *captured) write(ctx context.Context, aw *archive) error {
	mb, err := json.MarshalIndent(c.manifest, "", "  ")
	if err != nil {
		return fmt.Errorf("backup: encode the manifest: %w", err)
	}
	if err := aw.addBytes(manifestName, mb); err != nil {
		return err
	}
	if c.config != nil {
		if err := aw.addBytes(configName, c.config); err != nil {
			return err
		}
	}
	for i, b := range c.files {
		if err := aw.addBytes(fmt.Sprintf("%s%d", filePrefix, i), b); err != nil {
			return err
		}
	}
	for _, name := range alarmFiles {
		if b, ok := c.alarmFiles[name]; ok {
			if err := aw.addBytes(alarmsPrefix+name, b); err != nil {
				return err
			}
		}
	}
	if err := aw.addTree(ctx, alarmsPrefix+reportsDir, filepath.Join(c.alarmsDir, reportsDir), true); err != nil {
		return err
	}
	if c.users != nil {
		if err := aw.addBytes(usersName, c.users); err != nil {
			return err
		}
	}
	if err := aw.addTree(ctx, strings.TrimSuffix(storePrefix, "/"), c.checkpoint, false); err != nil {
		return err
	}
	for _, f := range c.audit.Files {
		if err := aw.add(auditPrefix+f.Name, f.Size, f.Reader()); err != nil {
			return err
		}
	}
	if c.secrets != nil {
		if err := aw.addBytes(secretsName, c.secrets); err != nil {
			return err
		}
	}
	return nil
}

// sealSecrets reads the secret files into a tar (entries named by their
// paths) encrypted with passphrase.
func sealSecrets(files []string, passphrase string) ([]byte, error) {
	r, err := age.NewScryptRecipient(passphrase)
	if err != nil {
		return nil, fmt.Errorf("backup: secrets: %w", err)
	}
	r.SetWorkFactor(scryptWorkFactor)
	var buf bytes.Buffer
	enc, err := age.Encrypt(&buf, r)
	if err != nil {
		return nil, fmt.Errorf("backup: secrets: %w", err)
	}
	tw := tar.NewWriter(enc)
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("backup: read the secret file %s: %w", p, err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o600, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(b); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("backup: secrets: %w", err)
	}
	return buf.Bytes(), nil
}

// archive writes tar entries into gzip and keeps their checksums for
// SHA256SUMS.
type archive struct {
	bw   *bufio.Writer
	gz   *gzip.Writer
	tw   *tar.Writer
	sums []string
	now  time.Time
}

func newArchive(w io.Writer) *archive {
	bw := bufio.NewWriterSize(w, 256<<10)
	// The store's tables are compressed already; the fastest level still
	// shrinks the audit log and state several times.
	gz, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	return &archive{bw: bw, gz: gz, tw: tar.NewWriter(gz), now: time.Now().UTC().Truncate(time.Second)}
}

func (a *archive) addBytes(name string, b []byte) error {
	return a.add(name, int64(len(b)), bytes.NewReader(b))
}

func (a *archive) add(name string, size int64, r io.Reader) error {
	if err := a.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: a.now, Typeflag: tar.TypeReg}); err != nil {
		return fmt.Errorf("backup: write %s: %w", name, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(a.tw, h), io.LimitReader(r, size))
	if err != nil {
		return fmt.Errorf("backup: write %s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("backup: write %s: %d bytes of %d (the file shrank while it was copied)", name, n, size)
	}
	a.sums = append(a.sums, sumLine(h, name))
	return nil
}

func sumLine(h hash.Hash, name string) string {
	return hex.EncodeToString(h.Sum(nil)) + "  " + name + "\n"
}

// addTree adds every regular file under dir as prefix/<relative path>.
// skipTemp leaves out files being written (atomicfile's .tmp): their
// finished version is in the next backup. A missing dir adds nothing.
func (a *archive) addTree(ctx context.Context, prefix, dir string, skipTemp bool) error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("backup: read %s: %w", p, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() || (skipTemp && strings.HasSuffix(p, ".tmp")) {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("backup: read %s: %w", p, err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("backup: read %s: %w", p, err)
		}
		return a.add(path.Join(prefix, filepath.ToSlash(rel)), st.Size(), f)
	})
}

func (a *archive) finish() error {
	if err := a.addBytes(sumsName, []byte(strings.Join(a.sums, ""))); err != nil {
		return err
	}
	if err := a.tw.Close(); err != nil {
		return err
	}
	if err := a.gz.Close(); err != nil {
		return err
	}
	return a.bw.Flush()
}

// ReadPassphrase reads a passphrase file: its first line, which must
// have at least MinPassphrase characters.
func ReadPassphrase(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("backup: read the passphrase: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if len(line) < MinPassphrase {
		return "", fmt.Errorf("backup: the passphrase in %s has %d characters; at least %d are needed", path, len(line), MinPassphrase)
	}
	return line, nil
}
