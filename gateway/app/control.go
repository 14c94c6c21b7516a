package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shelterwatch/shelterwatch/gateway/backup"
)

// The control socket is how commands on the box reach the running
// gateway (today: `shelter-gateway backup`). It is a Unix socket of mode
// 0600 in the state directory, so only the service's user and root reach
// it; the gateway still asks the kernel who connected (SO_PEERCRED) and
// names them in the audit log. It never listens on the network.

// ErrNotRunning: no gateway answers on the control socket.
var ErrNotRunning = errors.New("no gateway is running on this config (its control socket does not answer)")

type peerKey struct{}

// newControl binds the control socket. A socket file left by a gateway
// that crashed is removed; one that answers means another gateway runs
// on the same directories, which must not start twice.
func (a *App) newControl() error {
	path := a.cfg.ControlSocket()
	if err := os.MkdirAll(a.cfg.Alarms.Dir, 0o700); err != nil {
		return fmt.Errorf("app: control socket: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("app: another gateway answers on the control socket %s: it runs on the same data; stop it first", path)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("app: control socket: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("app: control socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", a.controlStatus)
	mux.HandleFunc("POST /v1/backup", a.controlBackup)
	a.controlLn = ln
	a.controlSrv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, peerName(c))
		},
	}
	return nil
}

// serveControl serves the control socket until ctx ends.
func (a *App) serveControl(ctx context.Context) error { return serve(ctx, a.controlSrv, a.controlLn) }

// peerName names the process at the other end of a Unix connection by
// its user: "root (uid 0)".
func peerName(c net.Conn) string {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return "unknown"
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return "unknown"
	}
	var cred *syscall.Ucred
	_ = raw.Control(func(fd uintptr) {
		cred, err = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if err != nil || cred == nil {
		return "unknown"
	}
	uid := strconv.FormatUint(uint64(cred.Uid), 10)
	if u, err := user.LookupId(uid); err == nil {
		return "cli:" + u.Username + " (uid " + uid + ")"
	}
	return "cli:uid " + uid
}

// ControlStatus is the answer of GET /v1/status.
type ControlStatus struct {
	Facility string `json:"facility"`
	Version  string `json:"version"`
	Ready    bool   `json:"ready"`
	PID      int    `json:"pid"`
}

func (a *App) controlStatus(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ControlStatus{Facility: a.cfg.Facility.ID, Version: Version, Ready: a.ready.Load(), PID: os.Getpid()})
}

// BackupRequest is the body of POST /v1/backup.
type BackupRequest struct {
	// Passphrase, when set, adds the secret files, encrypted with it.
	Passphrase string `json:"passphrase,omitempty"`
}

// controlBackup streams a backup. An error before the first byte is a
// status with a message; one after it aborts the connection, and the
// client sees a file without its checksums (it checks before keeping it).
func (a *App) controlBackup(w http.ResponseWriter, r *http.Request) {
	var req BackupRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		http.Error(w, "backup: the request is not JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	if req.Passphrase != "" && len(req.Passphrase) < backup.MinPassphrase {
		http.Error(w, fmt.Sprintf("backup: the passphrase has %d characters; at least %d are needed", len(req.Passphrase), backup.MinPassphrase), http.StatusBadRequest)
		return
	}
	by, _ := r.Context().Value(peerKey{}).(string)
	ww := &startedWriter{w: w}
	w.Header().Set("Content-Type", "application/octet-stream")
	if _, err := a.Backup(r.Context(), ww, req.Passphrase, by); err != nil {
		a.log.Error("backup: failed", "by", by, "err", err)
		if !ww.started {
			code := http.StatusInternalServerError
			if errors.Is(err, ErrBackupRunning) {
				code = http.StatusConflict
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			http.Error(w, err.Error(), code)
			return
		}
		panic(http.ErrAbortHandler)
	}
}

// startedWriter notes whether anything was written yet.
type startedWriter struct {
	w       io.Writer
	started bool
}

func (s *startedWriter) Write(p []byte) (int, error) {
	s.started = true
	return s.w.Write(p)
}

// controlClient talks HTTP over the control socket at path.
func controlClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

// Status asks the gateway on the control socket at path how it is;
// ErrNotRunning when none answers.
func Status(ctx context.Context, path string) (ControlStatus, error) {
	var st ControlStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://gateway/v1/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := controlClient(path).Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return st, ErrNotRunning
		}
		return st, fmt.Errorf("control socket %s: %w", path, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("control socket %s: %w", path, err)
	}
	return st, nil
}

// RequestBackup asks the gateway on the control socket at path for a
// backup and copies it to w.
func RequestBackup(ctx context.Context, path string, w io.Writer, passphrase string) error {
	body, _ := json.Marshal(BackupRequest{Passphrase: passphrase})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://gateway/v1/backup", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := controlClient(path).Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return ErrNotRunning
		}
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("the gateway refused the backup: %s", trimLine(msg))
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("the backup was cut off: %w", err)
	}
	return nil
}

func trimLine(b []byte) string { return strings.TrimRight(string(b), "\r\n") }
