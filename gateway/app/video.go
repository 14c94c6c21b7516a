package app

import (
	"context"
	"fmt"
	"time"

	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/gateway/httpapi"
	"github.com/shelterwatch/shelterwatch/gateway/selfalarm"
	"github.com/shelterwatch/shelterwatch/rules/engine"
	"github.com/shelterwatch/shelterwatch/video/cameras"
	"github.com/shelterwatch/shelterwatch/video/hub"
	"github.com/shelterwatch/shelterwatch/video/source"
	"github.com/shelterwatch/shelterwatch/video/whep"
)

// AlarmCameraDown (+ ":" + camera id): an always-on camera has not been
// live for its down_alarm_after.
const AlarmCameraDown = "camera-down"

// newVideo builds the cameras and the WHEP server when cameras are
// configured; the API gets them through videoAPI.
func (a *App) newVideo() error {
	if len(a.cfg.Cameras) == 0 {
		return nil
	}
	cams := make([]cameras.Camera, 0, len(a.cfg.Cameras))
	for _, c := range a.cfg.Cameras {
		u, err := c.PullURL()
		if err != nil {
			return err
		}
		cams = append(cams, cameras.Camera{ID: c.ID, Name: c.Name, Zone: c.Zone, URL: u.Reveal(), Transport: c.Transport,
			OnDemand: c.OnDemand, Grace: c.Grace.Std()})
	}
	set, err := cameras.New(cams, hub.Options{}, a.log)
	if err != nil {
		return err
	}
	a.Cameras = set
	v := a.cfg.Video
	var ice []whep.ICEServer
	for _, s := range v.ICEServers {
		secret, err := s.ReadSecret()
		if err != nil {
			return err
		}
		is := whep.ICEServer{URLs: s.URLs, ClientOnly: s.ClientOnly, TTL: s.TTL.Std()}
		if s.SecretFile != "" {
			is.Secret = secret.Reveal()
		} else if s.Username != "" {
			is.Username, is.Credential = s.Username, secret.Reveal()
		}
		ice = append(ice, is)
	}
	a.WHEP, err = whep.New(whep.Config{
		UDPAddr: v.WebRTCUDP, TCPAddr: v.WebRTCTCP, AdvertiseIPs: v.AdvertiseIPs, ICEServers: ice,
		MaxViewers: v.MaxViewers, MaxViewersPerCamera: v.MaxViewersPerCamera,
		Audit: a.auditVideo, Logger: a.log,
	}, set)
	if err != nil {
		set.Close()
		a.Cameras = nil
		return err
	}
	return a.reg.Register(a.WHEP.Collector())
}

func (a *App) videoAPI() *httpapi.Video {
	if a.WHEP == nil {
		return nil
	}
	return &httpapi.Video{WHEP: a.WHEP, Cameras: a.Cameras.Statuses, Sessions: a.WHEP.Sessions}
}

// auditVideo writes a viewing session's start and end to the audit log.
func (a *App) auditVideo(r whep.Record) {
	e := engine.AuditEntry{Action: "video_view_started", By: r.Who, Camera: r.Camera, Session: r.ID, Remote: r.Remote,
		Started: r.Start, Time: r.Start}
	if !r.End.IsZero() {
		e.Action, e.Time, e.Bytes, e.Detail = "video_view_ended", r.End, r.Bytes, r.Reason
	}
	if err := a.Rules.Record(e); err != nil {
		// The audit log is the record of who saw inside a placement:
		// losing an entry is worth an alarm, not just a log line.
		a.log.Error("video: audit log write failed", "err", err, "camera", r.Camera, "who", r.Who)
		a.Alarms.Raise("audit-log", selfalarm.Warning, false,
			"Writing the audit log failed: "+err.Error(), "写入审计日志失败："+err.Error())
	}
}

// runVideo starts the cameras and watches the always-on ones: a camera not
// live for its down_alarm_after raises camera-down:<id>, cleared when it
// is back. It returns when ctx ends, after stopping the cameras.
func (a *App) runVideo(ctx context.Context) {
	a.Cameras.Start(ctx)
	after := map[string]time.Duration{}
	names := map[string]config.Camera{}
	for _, c := range a.cfg.Cameras {
		after[c.ID], names[c.ID] = c.DownAlarmAfter.Std(), c
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	raised := map[string]bool{}
	// lastLive is when each camera was last seen live (start counts: a
	// camera gets down_alarm_after to come up). A failing camera cycles
	// through connecting and failed, so the state's own Since is no guide.
	lastLive := map[string]time.Time{}
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			for _, st := range a.Cameras.Statuses() {
				if st.OnDemand {
					continue
				}
				id := AlarmCameraDown + ":" + st.ID
				if st.State == source.StateLive {
					lastLive[st.ID] = now
				}
				since, ok := lastLive[st.ID]
				if !ok {
					since = start
				}
				down := st.State != source.StateLive && now.Sub(since) >= after[st.ID]
				switch {
				case down && !raised[st.ID]:
					raised[st.ID] = true
					c := names[st.ID]
					reason := st.Reason
					if reason == "" {
						reason = st.State
					}
					a.Alarms.Raise(id, selfalarm.Warning, false,
						fmt.Sprintf("Camera %s (zone %s) has shown no video for %s: %s. Remote supervision of this area is interrupted.", cameraName(c), c.Zone, after[st.ID], reason),
						fmt.Sprintf("摄像头 %s（区域 %s）已 %s 无视频：%s。该区域的远程监督已中断。", cameraNameZH(c), c.Zone, after[st.ID], reason))
				case !down && st.State == source.StateLive && raised[st.ID]:
					raised[st.ID] = false
					a.Alarms.Clear(id)
				}
			}
		}
	}
}

func cameraName(c config.Camera) string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

func cameraNameZH(c config.Camera) string {
	if c.NameZH != "" {
		return c.NameZH
	}
	return cameraName(c)
}
