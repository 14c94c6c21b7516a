package video

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/video/camsim"
)

// ClipSpec is the load clip ffmpeg makes.
type ClipSpec struct {
	Size    string // WxH
	FPS     int
	Seconds int
	GOP     int    // frames between keyframes
	Bitrate string // ffmpeg -b:v, e.g. "2M"
}

// loadClip is the generated load clip, as camsim loops it.
type loadClip struct {
	ClipSpec
	Clip        *camsim.Clip
	BitsPerSec  float64 // file size over the clip's duration
	GOPMeasured time.Duration
}

// makeLoadClip encodes the load clip with ffmpeg into dir and loads it.
func makeLoadClip(ctx context.Context, ffmpeg, dir string, s ClipSpec) (loadClip, error) {
	return makeClip(ctx, ffmpeg, filepath.Join(dir, "load.h264"), s)
}

// makeClip encodes a testsrc2 clip of spec s into out and loads it.
func makeClip(ctx context.Context, ffmpeg, out string, s ClipSpec) (loadClip, error) {
	args := []string{"-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%s:rate=%d", s.Size, s.FPS), "-t", strconv.Itoa(s.Seconds),
		"-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-tune", "zerolatency", "-bf", "0",
		"-g", strconv.Itoa(s.GOP), "-x264-params", fmt.Sprintf("keyint=%d:min-keyint=%d:scenecut=0", s.GOP, s.GOP),
		"-b:v", s.Bitrate, "-maxrate", s.Bitrate, "-bufsize", halfRate(s.Bitrate), "-f", "h264", out}
	cmd := exec.CommandContext(ctx, ffmpeg, args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return loadClip{}, fmt.Errorf("make a clip: %s %s: %w: %s", ffmpeg, strings.Join(args, " "), err, strings.TrimSpace(string(b)))
	}
	st, err := os.Stat(out)
	if err != nil {
		return loadClip{}, err
	}
	clip, err := camsim.LoadClip(out)
	if err != nil {
		return loadClip{}, err
	}
	lc := loadClip{ClipSpec: s, Clip: clip}
	dur := time.Duration(len(clip.AccessUnits)) * clip.FrameDuration
	lc.BitsPerSec = float64(st.Size()) * 8 / dur.Seconds()
	idr := 0
	for _, au := range clip.AccessUnits {
		if au.IDR {
			idr++
		}
	}
	lc.GOPMeasured = (dur / time.Duration(max(idr, 1))).Round(time.Millisecond)
	return lc, nil
}

// halfRate is the VBV buffer for a bit rate like "2M": half a second of it.
func halfRate(rate string) string {
	n, unit := rate, ""
	if i := strings.IndexAny(rate, "kKmM"); i > 0 {
		n, unit = rate[:i], rate[i:]
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil {
		return rate
	}
	return strconv.FormatFloat(f/2, 'f', -1, 64) + unit
}
