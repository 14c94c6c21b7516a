// Package camsim simulates IP cameras for the demo, tests and benchmarks: an
// RTSP server that serves one path per camera (/cam1, /cam2, ...), each
// looping a short H.264 clip at the clip's own frame rate.
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
// # Concurrency and backpressure
//
// Start runs one goroutine per camera that paces its clip with a ticker and
// writes each access unit once to the camera's stream; gortsplib gives every
// reader its own bounded write queue, so a slow reader loses packets and
// never slows the camera or the other readers. Close stops the cameras,
// waits for them and closes the server.
package camsim
