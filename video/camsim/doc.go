// Package camsim simulates IP cameras for the demo, tests and benchmarks: an
// RTSP server that serves one path per camera (/cam1, /cam2, ...), each
// looping a short H.264 clip at the clip's own frame rate, and, with
// Options.Push, re-serves live streams that a publisher such as ffmpeg
// pushes to it.
//
// Readers and publishers can use the TCP (interleaved) transport; UDP as
// well when Options.UDPRTPAddress and UDPRTCPAddress are set, where port 0
// picks a free even port and the next one.
//
// Clips are Annex-B H.264 elementary streams without B-frames (see
// testdata/README.md for how the committed ones were made). Each access unit
// is sent with SPS and PPS in-band before every IDR, and RTP timestamps keep
// counting across loops, so to a reader the clip looks like an endless live
// camera.
//
// # Send-time stamp
//
// Every access unit carries, before its slices, one SEI NAL unit holding a
// user_data_unregistered message (payload type 5): the 16 bytes of StampUUID
// followed by the send time as 8 bytes big-endian Unix nanoseconds (24 bytes
// of payload). The NAL unit is escaped with emulation prevention bytes as
// H.264 requires. A receiver at the end of the relay calls ParseStamp on the
// access unit it got and subtracts the result from its own clock to measure
// the relay latency; decoders ignore the message.
//
// # Live pushes
//
// With Options.Push, a publisher may ANNOUNCE and RECORD on any path that no
// camera serves, for example
//
//	ffmpeg -re -f lavfi -i testsrc=size=320x240:rate=15 -c:v libx264 -pix_fmt yuv420p \
//	    -g 30 -tune zerolatency -preset ultrafast -bf 0 \
//	    -f rtsp -rtsp_transport tcp rtsp://127.0.0.1:8554/live
//
// and readers DESCRIBE, SETUP and PLAY the same path with the medias the
// publisher announced. Refusals carry the reason in the status line:
// 403 Forbidden when pushes are disabled or the path serves a clip, and
// 503 Service Unavailable while another publisher holds the path. A path
// without a publisher answers readers 404 Not Found.
//
// When the publisher's session ends (it tears down, its RTSP connection
// closes, or it is killed), the path's stream closes, which disconnects its
// readers as a camera going away would, and the path is free for the next
// publisher. That holds over UDP too, where the session is closed with its
// RTSP connection instead of after 10 s without packets. A test restarts a
// camera by killing ffmpeg and starting it again.
//
// H.264 in a push is stamped like the clips: the server reassembles each
// access unit, puts the send-time stamp before its slices (replacing a
// stamp from an earlier relay), adds SPS and PPS before every IDR picture
// that lacks them (ffmpeg's RTSP muxer sends them only in the SDP; in-band
// ones replace those of the SDP for later IDRs), and packetises it again
// with the publisher's RTP timestamps, announcing packetization mode 1.
// Every other format (H.265, G.711, Opus, AAC, ...), and H.264 in
// packetization mode 2, which is not reassembled, passes through untouched.
//
// # Concurrency and backpressure
//
// Start runs one goroutine per camera that paces its clip with a ticker and
// writes each access unit once to the camera's stream; a push is forwarded
// on gortsplib's goroutine that reads the publisher, one packet at a time,
// and never blocks on readers. gortsplib gives every reader its own bounded
// write queue, so a slow reader loses packets and never slows the camera,
// the publisher or the other readers. Close stops the cameras, waits for
// them and closes the server, which ends every push and every reader.
package camsim
