package proc

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"
)

// FreePort asks the kernel for a loopback TCP port free right now. Another
// process may take it before the program it is meant for binds it; see
// StartRetrying.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// FreeUDPPort asks the kernel for a loopback UDP port free right now.
func FreeUDPPort() (int, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port, nil
}

// FreeLoopback returns a loopback address with a TCP port free right now,
// for a gateway's HTTP server. It cannot listen on port 0 beside an
// embedded broker: config validation rejects http.listen equal to
// broker.embedded.listen, and both would be "127.0.0.1:0".
func FreeLoopback() (string, error) {
	p, err := FreePort()
	if err != nil {
		return "", fmt.Errorf("pick an HTTP port: %w", err)
	}
	return "127.0.0.1:" + strconv.Itoa(p), nil
}

// Sleep waits d, or until ctx is done.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
