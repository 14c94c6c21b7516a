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
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"filippo.io/age"

	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/atomicfile"
	"github.com/shelterwatch/shelterwatch/internal/audit"
)

// ErrOtherFacility: the backup is of another facility than the config's.
var ErrOtherFacility = errors.New("the backup is of another facility")

// ErrInUse: a gateway runs on the directories a restore would replace.
var ErrInUse = errors.New("a gateway is running on this data")

// Inspect reads the whole backup at path, checks every entry against its
// checksum, and returns the manifest. Nothing is written.
func Inspect(path string) (Manifest, error) {
	var m Manifest
	err := read(path, func(name string, r io.Reader) error {
		if name == manifestName {
			return decodeManifest(r, &m)
		}
		_, err := io.Copy(io.Discard, r)
		return err
	})
	return m, err
}

func decodeManifest(r io.Reader, m *Manifest) error {
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, m); err != nil {
		return fmt.Errorf("backup: the manifest is not readable: %w", err)
	}
	switch {
	case m.Kind != Kind:
		return fmt.Errorf("backup: not a ShelterWatch backup (kind %q)", m.Kind)
	case m.Format > Format:
		return fmt.Errorf("backup: the backup was written by a newer gateway (%s, backup format %d; this build reads formats up to %d): "+
			"restore it with that gateway version or a newer one", m.Gateway, m.Format, Format)
	case m.Facility == "":
		return errors.New("backup: the manifest names no facility")
	}
	return nil
}

// read opens the backup at p, hands fn each entry in order (the manifest
// first) and checks every entry's checksum against SHA256SUMS at the end.
// Names are checked before fn sees them: only the layout's own, never a
// path that leaves its directory.
func read(p string, fn func(name string, r io.Reader) error) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(bufio.NewReaderSize(f, 256<<10))
	if err != nil {
		return fmt.Errorf("backup: %s is not a backup file (not gzip): %w", p, err)
	}
	tr := tar.NewReader(gz)
	got := map[string]string{}
	var order []string
	var sums []byte
	for i := 0; ; i++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("backup: %s is damaged or cut short: %w", p, err)
		}
		if h.Typeflag != tar.TypeReg {
			return fmt.Errorf("backup: unexpected entry %q (not a regular file)", h.Name)
		}
		if i == 0 && h.Name != manifestName {
			return fmt.Errorf("backup: %s does not begin with %s: not a ShelterWatch backup", p, manifestName)
		}
		if err := checkName(h.Name); err != nil {
			return err
		}
		if _, dup := got[h.Name]; dup {
			return fmt.Errorf("backup: entry %q appears twice", h.Name)
		}
		if h.Name == sumsName {
			if sums, err = io.ReadAll(io.LimitReader(tr, 16<<20)); err != nil {
				return fmt.Errorf("backup: %s is damaged: %w", p, err)
			}
			got[h.Name] = ""
			continue
		}
		if sums != nil {
			return fmt.Errorf("backup: entry %q after %s", h.Name, sumsName)
		}
		hs := sha256.New()
		er := &entryReader{r: tr, file: p, name: h.Name}
		if err := fn(h.Name, io.TeeReader(er, hs)); err != nil {
			return err
		}
		// fn may stop reading early; the checksum covers the whole entry.
		if _, err := io.Copy(hs, er); err != nil {
			return err
		}
		got[h.Name] = hex.EncodeToString(hs.Sum(nil))
		order = append(order, h.Name)
	}
	if sums == nil {
		return fmt.Errorf("backup: %s has no %s: it was cut short while being written", p, sumsName)
	}
	want := map[string]string{}
	for line := range strings.Lines(string(sums)) {
		sum, name, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "  ")
		if !ok {
			return fmt.Errorf("backup: %s: a line of %s is malformed", p, sumsName)
		}
		want[name] = sum
	}
	for _, name := range order {
		if want[name] != got[name] {
			return fmt.Errorf("backup: %s: entry %s does not match its checksum: the file is damaged", p, name)
		}
		delete(want, name)
	}
	for name := range want {
		return fmt.Errorf("backup: %s: entry %s is missing", p, name)
	}
	return nil
}

// entryReader names the file and entry in a read error: a backup cut
// short or damaged shows as gzip or tar errors in the middle of an entry.
type entryReader struct {
	r          io.Reader
	file, name string
}

func (e *entryReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("backup: %s is damaged or cut short (in %s): %w", e.file, e.name, err)
	}
	return n, err
}

// checkName accepts the layout's entry names only.
func checkName(name string) error {
	switch name {
	case manifestName, sumsName, configName, usersName, secretsName:
		return nil
	}
	if n, ok := strings.CutPrefix(name, filePrefix); ok {
		if _, err := strconv.Atoi(n); err == nil {
			return nil
		}
	}
	clean := path.Clean(name)
	if clean != name || strings.HasPrefix(name, "/") || strings.Contains(name, "..") || strings.Contains(name, "\\") {
		return fmt.Errorf("backup: entry %q is not a plain relative name", name)
	}
	for _, p := range []string{storePrefix, alarmsPrefix, auditPrefix} {
		if strings.HasPrefix(name, p) && len(name) > len(p) {
			return nil
		}
	}
	return fmt.Errorf("backup: unexpected entry %q", name)
}

// Target is where a restore puts the data, from the config in effect.
type Target struct {
	StoreDir  string
	AlarmsDir string
	// AuditPath is the audit log's current file; UsersFile the
	// console's accounts.
	AuditPath string
	UsersFile string
}

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Facility is the config's facility id.
	Facility string
	// OtherFacility allows a backup of another facility.
	OtherFacility bool
	// Replace moves data already in the target aside (never deletes it);
	// without it a restore refuses a target that holds data.
	Replace bool
	// By is who restores (the audit entry).
	By  string
	Now func() time.Time
}

// Result says what a restore put back.
type Result struct {
	Manifest Manifest
	// FirstSeq and LastSeq bound the restored store's readings.
	FirstSeq, LastSeq uint64
	Cursors           map[string]uint64
	// Audit is the restored audit log's check, with the restore's own
	// entry.
	Audit audit.Report
	// MovedAside lists what Replace moved away.
	MovedAside []string
}

// Restore puts the backup at path into t on a stopped gateway. It checks
// the whole file first, then writes each directory beside its target and
// renames it into place, so a restore cut short leaves the target as it
// was. It refuses a backup of another facility (unless asked), a target
// that holds data (unless Replace), and a target a running gateway uses.
func Restore(ctx context.Context, p string, t Target, opts RestoreOptions) (Result, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var res Result
	m, err := Inspect(p)
	if err != nil {
		return res, err
	}
	res.Manifest = m
	if m.Facility != opts.Facility && !opts.OtherFacility {
		return res, fmt.Errorf("backup: %w: the backup is of facility %q (%s), this gateway's config is of %q; "+
			"restoring it would mix two facilities' records (restore with --other-facility to take it anyway)",
			ErrOtherFacility, m.Facility, m.FacilityName, opts.Facility)
	}
	if nested(t.StoreDir, t.AlarmsDir) {
		return res, fmt.Errorf("backup: store.dir %s and alarms.dir %s lie one inside the other; a restore needs them apart", t.StoreDir, t.AlarmsDir)
	}
	if inUse(t.StoreDir) {
		return res, fmt.Errorf("backup: %w: the store %s is open in another process; stop the gateway (systemctl stop shelterwatch) first", ErrInUse, t.StoreDir)
	}
	dirs := []string{t.StoreDir, t.AlarmsDir}
	outside := map[string]string{} // entry name → file outside both dirs
	auditDir := filepath.Dir(t.AuditPath)
	if !within(auditDir, t.AlarmsDir) {
		dirs = append(dirs, auditDir)
	}
	if !within(t.UsersFile, t.AlarmsDir) {
		outside[usersName] = t.UsersFile
	}
	for _, d := range dirs {
		if held, err := holdsData(d); err != nil {
			return res, err
		} else if held && !opts.Replace {
			return res, fmt.Errorf("backup: %s already holds data; restore with --replace to move it aside (it is kept, never deleted)", d)
		}
	}
	for name, f := range outside {
		if _, err := os.Stat(f); err == nil && !opts.Replace {
			return res, fmt.Errorf("backup: %s (%s) exists; restore with --replace to move it aside", f, name)
		}
	}

	// Write beside the targets.
	staging := map[string]string{}
	for _, d := range dirs {
		s := d + ".restoring"
		if err := os.RemoveAll(s); err != nil { // what an interrupted restore left
			return res, fmt.Errorf("backup: clear %s: %w", s, err)
		}
		if err := os.MkdirAll(s, 0o700); err != nil {
			return res, fmt.Errorf("backup: %w", err)
		}
		staging[d] = s
	}
	defer func() {
		for _, s := range staging {
			_ = os.RemoveAll(s)
		}
	}()
	files := map[string][]byte{}
	err = read(p, func(name string, r io.Reader) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var dst string
		switch {
		case strings.HasPrefix(name, storePrefix):
			dst = filepath.Join(staging[t.StoreDir], filepath.FromSlash(strings.TrimPrefix(name, storePrefix)))
		case strings.HasPrefix(name, alarmsPrefix):
			dst = filepath.Join(staging[t.AlarmsDir], filepath.FromSlash(strings.TrimPrefix(name, alarmsPrefix)))
		case strings.HasPrefix(name, auditPrefix):
			dir := staging[auditDir]
			if within(auditDir, t.AlarmsDir) {
				rel, _ := filepath.Rel(t.AlarmsDir, auditDir)
				dir = filepath.Join(staging[t.AlarmsDir], rel)
			}
			dst = filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(name, auditPrefix)))
		case name == usersName:
			if _, ok := outside[usersName]; ok {
				b, err := io.ReadAll(r)
				files[usersName] = b
				return err
			}
			rel, _ := filepath.Rel(t.AlarmsDir, t.UsersFile)
			dst = filepath.Join(staging[t.AlarmsDir], rel)
		default:
			return nil // the manifest, the config and secrets: not data
		}
		return writeFile(dst, r)
	})
	if err != nil {
		return res, err
	}
	for _, s := range staging {
		if err := syncTree(s); err != nil {
			return res, err
		}
	}

	// Into place: what was there moves aside first.
	stamp := opts.Now().UTC().Format("20060102T150405Z")
	for _, d := range dirs {
		if held, _ := holdsData(d); held {
			aside := d + ".before-restore-" + stamp
			if err := os.Rename(d, aside); err != nil {
				return res, fmt.Errorf("backup: move %s aside: %w", d, err)
			}
			res.MovedAside = append(res.MovedAside, aside)
		} else if err := os.RemoveAll(d); err != nil { // an empty directory
			return res, fmt.Errorf("backup: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(d), 0o755); err != nil {
			return res, fmt.Errorf("backup: %w", err)
		}
		if err := os.Rename(staging[d], d); err != nil {
			return res, fmt.Errorf("backup: put %s in place: %w", d, err)
		}
		delete(staging, d)
		syncDir(filepath.Dir(d))
	}
	for name, f := range outside {
		if b, ok := files[name]; ok {
			if _, err := os.Stat(f); err == nil {
				aside := f + ".before-restore-" + stamp
				if err := os.Rename(f, aside); err != nil {
					return res, fmt.Errorf("backup: move %s aside: %w", f, err)
				}
				res.MovedAside = append(res.MovedAside, aside)
			}
			if err := atomicfile.Write(f, b); err != nil {
				return res, fmt.Errorf("backup: %w", err)
			}
		}
	}

	// Check what is in place as the gateway will open it, and record the
	// restore in the restored audit log.
	st, err := store.Open(store.Options{Dir: t.StoreDir})
	if err != nil {
		return res, fmt.Errorf("backup: the restored store does not open: %w", err)
	}
	res.FirstSeq, res.LastSeq, res.Cursors = st.FirstSeq(), st.LastSeq(), st.Cursors()
	if err := st.Close(); err != nil {
		return res, fmt.Errorf("backup: close the restored store: %w", err)
	}
	if res.LastSeq < m.Store.ReadingsThrough {
		return res, fmt.Errorf("backup: the restored store ends at reading %d, the backup promised %d", res.LastSeq, m.Store.ReadingsThrough)
	}
	al, err := audit.Open(t.AuditPath, audit.Options{Now: opts.Now})
	if err != nil {
		return res, fmt.Errorf("backup: open the restored audit log: %w", err)
	}
	err = al.Append(audit.Entry{Action: audit.ActionBackupRestored, By: opts.By,
		Comment: fmt.Sprintf("restored the backup of %s made %s by %s (readings through %d)",
			m.Facility, m.Created.Format(time.RFC3339), orUnknown(m.By), m.Store.ReadingsThrough)})
	if cerr := al.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, fmt.Errorf("backup: record the restore in the audit log: %w", err)
	}
	if res.Audit, err = audit.Verify(t.AuditPath); err != nil {
		return res, fmt.Errorf("backup: the restored audit log does not verify: %w", err)
	}
	if err := chownLikeParent(dirs, outside); err != nil {
		return res, err
	}
	return res, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// RestoreConfig writes the backup's config file to configPath and the
// other files it names (rules file, certificates) back where they were;
// with a passphrase also the secret files. Files already there are moved
// aside. It returns what it wrote, and what it left out: only files in
// the config's directory (and below) are written, since a restore runs as
// root and a backup file from a share could name any path on the
// machine; the others are for the installer to put in place.
func RestoreConfig(p, configPath, passphrase string, now time.Time) (wrote, skipped []string, err error) {
	var m Manifest
	var cfg, sealed []byte
	files := map[string][]byte{}
	err = read(p, func(name string, r io.Reader) error {
		var err error
		switch {
		case name == manifestName:
			err = decodeManifest(r, &m)
		case name == configName:
			cfg, err = io.ReadAll(r)
		case name == secretsName:
			sealed, err = io.ReadAll(r)
		case strings.HasPrefix(name, filePrefix):
			files[name], err = io.ReadAll(io.LimitReader(r, 16<<20))
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if cfg == nil {
		return nil, nil, errors.New("backup: the backup holds no config file (it was made of a gateway run without one, such as the demo)")
	}
	out := map[string][]byte{configPath: cfg}
	for i, f := range m.ConfigFiles {
		b, ok := files[fmt.Sprintf("%s%d", filePrefix, i)]
		if !ok || !filepath.IsAbs(f) || filepath.Clean(f) != f {
			return nil, nil, fmt.Errorf("backup: the backup's file %d (%q) is missing or not an absolute path", i, f)
		}
		out[f] = b
	}
	if passphrase != "" {
		if sealed == nil {
			return nil, nil, errors.New("backup: a passphrase was given, but the backup holds no secrets (it was made without --with-secrets)")
		}
		secrets, err := openSecrets(sealed, passphrase, m.Secrets)
		if err != nil {
			return nil, nil, err
		}
		for f, b := range secrets {
			out[f] = b
		}
	}
	stamp := now.UTC().Format("20060102T150405Z")
	configGID := -1
	if st, err := os.Stat(filepath.Dir(configPath)); err == nil {
		if s, ok := st.Sys().(*syscall.Stat_t); ok {
			configGID = int(s.Gid)
		}
	}
	home := filepath.Dir(configPath)
	if abs, err := filepath.Abs(home); err == nil {
		home = abs
	}
	for _, f := range slices.Sorted(maps.Keys(out)) {
		if f != configPath && !within(f, home) {
			skipped = append(skipped, f)
			continue
		}
		// A file replaced keeps its mode and owner (the packaged config is
		// root:shelterwatch 0640: the service must still read it); a new
		// one is 0640 with the group of the config's directory
		// (/etc/shelterwatch is the service's group), wherever it lies.
		mode, uid, gid := fs.FileMode(0o640), -1, configGID
		if old, err := os.ReadFile(f); err == nil {
			if bytes.Equal(old, out[f]) {
				continue
			}
			if st, err := os.Stat(f); err == nil {
				mode = st.Mode().Perm()
				if s, ok := st.Sys().(*syscall.Stat_t); ok {
					uid, gid = int(s.Uid), int(s.Gid)
				}
			}
			if err := os.Rename(f, f+".before-restore-"+stamp); err != nil {
				return wrote, skipped, fmt.Errorf("backup: move %s aside: %w", f, err)
			}
		}
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return wrote, skipped, fmt.Errorf("backup: %w", err)
		}
		if err := atomicfile.Write(f, out[f]); err != nil {
			return wrote, skipped, fmt.Errorf("backup: %w", err)
		}
		if err := os.Chmod(f, mode); err != nil {
			return wrote, skipped, fmt.Errorf("backup: %w", err)
		}
		if os.Geteuid() == 0 {
			if err := os.Chown(f, uid, gid); err != nil {
				return wrote, skipped, fmt.Errorf("backup: %w", err)
			}
		}
		wrote = append(wrote, f)
	}
	return wrote, skipped, nil
}

// openSecrets decrypts the secrets tar; only the files the manifest lists,
// each an absolute clean path, come out of it.
func openSecrets(sealed []byte, passphrase string, listed []string) (map[string][]byte, error) {
	id, err := age.NewScryptIdentity(passphrase)
	if err != nil {
		return nil, fmt.Errorf("backup: secrets: %w", err)
	}
	r, err := age.Decrypt(bytes.NewReader(sealed), id)
	if err != nil {
		return nil, fmt.Errorf("backup: the secrets do not open with this passphrase: %w", err)
	}
	tr := tar.NewReader(r)
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("backup: the secrets are damaged: %w", err)
		}
		if !filepath.IsAbs(h.Name) || filepath.Clean(h.Name) != h.Name || !slices.Contains(listed, h.Name) {
			return nil, fmt.Errorf("backup: the secrets hold an unexpected entry %q", h.Name)
		}
		b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
		if err != nil {
			return nil, fmt.Errorf("backup: the secrets are damaged: %w", err)
		}
		out[h.Name] = b
	}
	return out, nil
}

// writeFile writes r to dst (0600), creating its directory (0700).
func writeFile(dst string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("backup: write %s: %w", dst, err)
	}
	return f.Close()
}

// syncTree fsyncs every file and directory under dir, so what is renamed
// into place is on disk.
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("backup: sync %s: %w", p, err)
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			return fmt.Errorf("backup: sync %s: %w", p, err)
		}
		return nil
	})
}

func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		f.Close()
	}
}

// holdsData reports whether dir exists with anything in it.
func holdsData(dir string) (bool, error) {
	des, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("backup: %w", err)
	}
	return len(des) > 0, nil
}

// within reports whether p is dir or lies under it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func nested(a, b string) bool { return within(a, b) || within(b, a) }

// inUse reports whether another process holds the store's lock (Pebble's
// LOCK file, an fcntl lock while the database is open).
func inUse(dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	// F_GETLK asks who would stop a lock, without taking one.
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return false
	}
	return lk.Type != syscall.F_UNLCK
}

// GiveBack gives everything under dir to dir's own owner when run as
// root: a command that opened a stopped gateway's store as root (a
// backup) leaves the files it wrote (a new log, a manifest) to the
// service's user, so that the gateway can open them again.
func GiveBack(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(s.Uid), int(s.Gid))
	})
}

// chownLikeParent gives what a restore run as root wrote to the owner of
// the directory it lies in (the service's user owns /var/lib/shelterwatch),
// so the gateway can open it.
func chownLikeParent(dirs []string, files map[string]string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	owner := func(p string) (int, int, bool) {
		st, err := os.Stat(filepath.Dir(p))
		if err != nil {
			return 0, 0, false
		}
		s, ok := st.Sys().(*syscall.Stat_t)
		return int(s.Uid), int(s.Gid), ok
	}
	for _, d := range dirs {
		uid, gid, ok := owner(d)
		if !ok {
			continue
		}
		if err := filepath.WalkDir(d, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		}); err != nil {
			return fmt.Errorf("backup: give %s to its directory's owner: %w", d, err)
		}
	}
	for _, f := range files {
		if uid, gid, ok := owner(f); ok {
			if err := os.Lchown(f, uid, gid); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("backup: %w", err)
			}
		}
	}
	return nil
}
