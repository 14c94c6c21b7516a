//go:build race

package browsertest

// The race detector slows the gateway's DTLS and RTP path several times
// over: the race run checks a looser first-picture bound, the plain run
// (make unit) the real one.
const raceEnabled = true
