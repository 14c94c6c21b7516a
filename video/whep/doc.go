// Package whep relays cameras to viewers over WebRTC, signalled with WHEP
// (RFC 9725), so any WHEP player works: a browser page, GStreamer's
// whepsrc, OBS.
//
// # Signalling
//
//	POST   {base}/{camera}/whep        application/sdp offer → 201, the answer, Location, ETag, Link
//	PATCH  {base}/{camera}/whep/{id}   application/trickle-ice-sdpfrag (If-Match) → 204
//	DELETE {base}/{camera}/whep/{id}   → 200, the session ends
//	OPTIONS {base}/{camera}/whep       → 204 with the ICE servers in Link headers
//
// The answer carries every server candidate (the server gathers before it
// answers: with a shared port that is immediate), so a player that does not
// trickle works; a player that does may PATCH its own candidates. ICE
// servers are advertised in Link headers (rel="ice-server"), TURN with
// time-limited REST credentials (coturn's use-auth-secret) when a secret is
// configured, so no long-lived TURN password reaches a browser.
//
// # Networking
//
// Every session shares one UDP port (pion's UDP mux) and, optionally, one
// ICE-TCP port for networks that block UDP. mDNS candidates are off. Host
// candidates can be replaced with configured addresses for a gateway
// behind 1:1 NAT. STUN is off unless configured (no traffic to third
// parties by default).
//
// # Media
//
// Each session subscribes to the camera's hub once the peer is connected,
// so its first frame is the GOP cache's keyframe (with SPS/PPS), sent at
// once. Cached frames are the past: they go out with timestamps 1 ms apart
// so the player decodes them straight away and then plays live, instead
// of replaying the whole GOP at the camera's pace and staying seconds
// behind. Afterwards timestamps follow the camera's clock; when the
// camera's stream restarts (its clock jumps) they continue from the wall
// clock, so the viewer's session simply carries on with the new stream.
//
// Access units are re-packetised for each viewer (payloads of at most 1188
// bytes, as WebRTC's MTU needs) with the viewer's own sequence numbers, so
// frames a slow viewer loses in the hub are not seen as packet loss. The
// default interceptors answer NACKs from a send buffer, send RTCP sender
// reports and TWCC feedback. A keyframe request (PLI/FIR) from the player
// is answered from the GOP cache (at most once a second): RTSP cameras
// cannot be asked for a keyframe, and waiting for the next one would
// freeze the picture for up to the camera's keyframe interval. A session
// that falls more than 2 s behind the camera (a gateway starved of CPU)
// skips ahead to the newest keyframe the same way, so a supervisor never
// watches an ever older picture.
//
// # Streams, pacing and remote links
//
// A camera may offer a sub stream beside its main one; the POST's
// ?quality=main|sub|auto (and ?tiles=, how many cameras the player shows)
// picks which a session plays, and with auto the session moves between
// them by what the link carries, at keyframes, without renegotiation.
// Video is paced at the session's bandwidth estimate (GCC over the
// player's transport-wide congestion control feedback). adapt.go says how
// and why.
//
// # Sessions
//
// One goroutine per session writes media, one reads RTCP; pion runs the
// peer's own. A session ends on DELETE, ICE failure, a peer that never
// connects (ConnectTimeout), the camera being removed, or Close. Limits
// bound viewers per camera and in total. Every session's start and end
// (who, camera, remote address, bytes) is reported to the Audit hook; a
// session whose start the hook cannot record is refused (503) and never
// sends a frame.
package whep
