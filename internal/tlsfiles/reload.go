package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// DefaultCheckEvery is how often, at most, a Reloader looks at its files
// when it is asked for the certificate.
const DefaultCheckEvery = 2 * time.Second

// ReloaderOptions tune a Reloader. The zero value is usable.
type ReloaderOptions struct {
	// CheckEvery: the files are looked at (two stats) at most this often
	// during handshakes. Default DefaultCheckEvery.
	CheckEvery time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Logger gets one warning per replacement that cannot be used.
	// Default: discarded.
	Logger *slog.Logger
}

// Reloader serves a certificate and key from files and reads them again
// when they change, so that a certificate replaced on disk is served from
// the next handshake on, without a restart.
//
// The files count as changed when the size, modification time or identity
// (a file renamed into place) of either one differs from when they were
// last read. A pair that cannot be used (a half-written file, a key that
// does not match) is refused: the certificate served so far stays, one
// warning is logged for that state of the files, and they are tried again
// once they change again. All methods may be called from any goroutine.
type Reloader struct {
	certFile, keyFile string
	every             time.Duration
	now               func() time.Time
	log               *slog.Logger

	mu         sync.Mutex
	cert       *tls.Certificate
	loaded     stamp     // the files as they were when cert was read
	refused    stamp     // the files as they were when last refused
	refusedErr error     // why; nil when the files on disk are served
	checked    time.Time // last look at the files
}

// stamp identifies the contents of the certificate and key files without
// reading them.
type stamp struct{ cert, key os.FileInfo }

func (s stamp) equal(o stamp) bool { return sameFile(s.cert, o.cert) && sameFile(s.key, o.key) }

func sameFile(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && os.SameFile(a, b)
}

// NewReloader reads the certificate and key; they must be usable now.
func NewReloader(certFile, keyFile string, opts ReloaderOptions) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile, every: opts.CheckEvery, now: opts.Now, log: opts.Logger}
	if r.every <= 0 {
		r.every = DefaultCheckEvery
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	cert, st, err := r.read()
	if err != nil {
		return nil, err
	}
	r.cert, r.loaded, r.checked = cert, st, r.now()
	return r, nil
}

// errChanging: the files changed while they were read; they are read
// again at the next look.
var errChanging = errors.New("tls: certificate files changed while being read")

// read loads the pair, and the stamp of the files it read. The files are
// stamped before and after reading, so that a pair read in the middle of a
// replacement is not taken for the new one.
func (r *Reloader) read() (*tls.Certificate, stamp, error) {
	before, err := r.stamp()
	if err != nil {
		return nil, stamp{}, err
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return nil, before, fmt.Errorf("tls: load certificate %s: %w", r.certFile, err)
	}
	if after, err := r.stamp(); err != nil || !after.equal(before) {
		return nil, stamp{}, errChanging
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, before, fmt.Errorf("tls: certificate %s: %w", r.certFile, err)
		}
	}
	return &cert, before, nil
}

func (r *Reloader) stamp() (stamp, error) {
	c, err := os.Stat(r.certFile)
	if err != nil {
		return stamp{}, fmt.Errorf("tls: certificate: %w", err)
	}
	k, err := os.Stat(r.keyFile)
	if err != nil {
		return stamp{}, fmt.Errorf("tls: key: %w", err)
	}
	return stamp{cert: c, key: k}, nil
}

// GetCertificate is for tls.Config: the current certificate, after a look
// at the files when the last one is more than CheckEvery ago.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= r.every || now.Before(r.checked) {
		r.checkLocked(now)
	}
	return r.cert, nil
}

// Check looks at the files now and loads them if they changed. It returns
// why the files on disk are not served, or nil when they are.
func (r *Reloader) Check() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checkLocked(r.now())
	return r.refusedErr
}

func (r *Reloader) checkLocked(now time.Time) {
	r.checked = now
	st, err := r.stamp()
	if err == nil && st.equal(r.loaded) {
		r.refusedErr = nil
		return
	}
	if err == nil && r.refusedErr != nil && st.equal(r.refused) {
		return // refused before and not changed since: warned already
	}
	cert, st, err := r.read()
	switch {
	case errors.Is(err, errChanging):
		return // being written: look again next time
	case err != nil:
		if r.refusedErr == nil || !st.equal(r.refused) {
			r.log.Warn("tls: new certificate files refused; still serving the previous certificate",
				"cert_file", r.certFile, "key_file", r.keyFile, "serving_until", r.cert.Leaf.NotAfter.UTC().Format(time.DateOnly), "err", err)
		}
		r.refused, r.refusedErr = st, err
		return
	}
	r.log.Info("tls: certificate reloaded", "cert_file", r.certFile,
		"serial", cert.Leaf.SerialNumber.Text(16), "not_after", cert.Leaf.NotAfter.UTC().Format(time.DateOnly))
	r.cert, r.loaded, r.refused, r.refusedErr = cert, st, stamp{}, nil
}

// Leaf is the certificate served now.
func (r *Reloader) Leaf() *x509.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cert.Leaf
}

// Condition looks at the files, then returns the condition of the
// certificate served (as the package's Condition does for a file), or why
// new files on disk are refused.
func (r *Reloader) Condition(now time.Time) string {
	if err := r.Check(); err != nil {
		return fmt.Sprintf("certificate %s on disk refused (%v); still serving the previous one, valid until %s",
			r.certFile, err, r.Leaf().NotAfter.UTC().Format(time.DateOnly))
	}
	return leafCondition(r.certFile, r.Leaf(), now)
}

// TLSConfig is a server configuration that serves the reloaded
// certificate.
func (r *Reloader) TLSConfig() *tls.Config {
	return &tls.Config{GetCertificate: r.GetCertificate, MinVersion: MinVersion}
}
