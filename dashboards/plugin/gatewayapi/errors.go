package gatewayapi

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
)

// Kind says what went wrong talking to a gateway, so that a health check
// can tell an operator what to fix.
type Kind int

// Kinds, from the network up.
const (
	// KindUnreachable: no connection (refused, DNS, timeout).
	KindUnreachable Kind = iota + 1
	// KindTLS: the TLS handshake failed (certificate problems, not TLS).
	KindTLS
	// KindUnauthorized: the gateway refused the token (401).
	KindUnauthorized
	// KindForbidden: the token's role lacks the permission (403).
	KindForbidden
	// KindVersion: the gateway's API version is not supported.
	KindVersion
	// KindNotGateway: the server does not answer as a ShelterWatch gateway.
	KindNotGateway
	// KindStatus: any other error status from the gateway (400, 5xx).
	KindStatus
)

var kindNames = map[Kind]string{
	KindUnreachable: "unreachable", KindTLS: "tls", KindUnauthorized: "unauthorized",
	KindForbidden: "forbidden", KindVersion: "version", KindNotGateway: "not a gateway", KindStatus: "status",
}

func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is a failed call to a gateway. Detail is a sentence for people
// ("the token was refused (401 Unauthorized)"); Err is the cause, if any.
type Error struct {
	Kind   Kind
	Op     string // "GET /api/v1/alarms"
	Status int    // the HTTP status, 0 without an answer
	Detail string
	Err    error
}

func (e *Error) Error() string { return "gatewayapi: " + e.Op + ": " + e.Detail }

func (e *Error) Unwrap() error { return e.Err }

// KindOf is the Kind of err, 0 when err is not an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// Detail is the human sentence of err: Error.Detail, or err.Error().
func Detail(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Detail
	}
	return err.Error()
}

// transportError classifies an error of http.Client.Do.
func transportError(op string, err error) *Error {
	e := &Error{Op: op, Err: err}
	var (
		dnsErr     *net.DNSError
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
		recordErr  tls.RecordHeaderError
		verifyErr  *tls.CertificateVerificationError
		netErr     net.Error
		urlErr     *url.Error
	)
	switch {
	case errors.As(err, &unknownCA):
		e.Kind, e.Detail = KindTLS, "TLS: the certificate is signed by an unknown authority"
	case errors.As(err, &hostErr):
		e.Kind, e.Detail = KindTLS, "TLS: the certificate is not valid for "+hostErr.Host
	case errors.As(err, &invalidErr):
		if invalidErr.Reason == x509.Expired {
			e.Kind, e.Detail = KindTLS, "TLS: the certificate has expired or is not yet valid"
		} else {
			e.Kind, e.Detail = KindTLS, "TLS: the certificate is invalid: "+invalidErr.Error()
		}
	case errors.As(err, &verifyErr):
		e.Kind, e.Detail = KindTLS, "TLS: the certificate was not accepted: "+verifyErr.Err.Error()
	case errors.As(err, &recordErr), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		e.Kind, e.Detail = KindTLS, "TLS: the server does not speak TLS"
	case errors.As(err, &dnsErr):
		e.Kind, e.Detail = KindUnreachable, "unreachable: no such host "+dnsErr.Name
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Kind, e.Detail = KindUnreachable, "unreachable: connection refused"
	case errors.As(err, &netErr) && netErr.Timeout():
		e.Kind, e.Detail = KindUnreachable, "unreachable: no answer in time"
	case errors.As(err, &urlErr):
		e.Kind, e.Detail = KindUnreachable, "unreachable: "+urlErr.Err.Error()
	default:
		e.Kind, e.Detail = KindUnreachable, "unreachable: "+err.Error()
	}
	return e
}
