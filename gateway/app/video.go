package app

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shelterwatch/shelterwatch/gateway/httpapi"
	"github.com/shelterwatch/shelterwatch/internal/audit"
	"github.com/shelterwatch/shelterwatch/video/cameras"
	"github.com/shelterwatch/shelterwatch/video/hub"
	"github.com/shelterwatch/shelterwatch/video/whep"
)

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
		sub, err := c.SubPullURL()
		if err != nil {
			return err
		}
		cams = append(cams, cameras.Camera{ID: c.ID, Name: c.Name, Zone: c.Zone, URL: u.Reveal(), Transport: c.Transport,
			SubURL: sub.Reveal(), SubAlwaysOn: c.SubAlwaysOn,
			OnDemand: c.OnDemand, Grace: c.Grace.Std(), DownAfter: c.DownAlarmAfter.Std()})
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
		MaxViewers: v.MaxViewers, MaxViewersPerCamera: v.MaxViewersPerCamera, MaxViewersPerViewer: v.MaxViewersPerToken,
		Audit: a.auditVideo, Logger: a.log,
	}, set)
	if err != nil {
		set.Close()
		a.Cameras = nil
		return err
	}
	return a.register("WHEP", func(r prometheus.Registerer) error { return r.Register(a.WHEP.Collector()) })
}

func (a *App) videoAPI() *httpapi.Video {
	if a.WHEP == nil {
		return nil
	}
	return &httpapi.Video{WHEP: a.WHEP, Cameras: a.Cameras.Statuses, Sessions: a.WHEP.Sessions}
}

// auditVideo writes a viewing session's start and end to the audit log. A
// failed write is a gateway fault (the audit log reports it to Health):
// the log is the record of who saw inside a placement, so the WHEP server
// refuses a session whose start it cannot write.
func (a *App) auditVideo(r whep.Record) error {
	e := audit.Entry{Action: audit.ActionVideoViewStarted, By: r.Who, Time: r.Start,
		Video: &audit.Video{Camera: r.Camera, Session: r.ID, Remote: r.Remote, Started: r.Start}}
	if !r.End.IsZero() {
		e.Action, e.Time, e.Video.Bytes, e.Detail = audit.ActionVideoViewEnded, r.End, r.Bytes, r.Reason
	}
	if err := a.Audit.Append(e); err != nil {
		a.log.Error("video: audit log write failed", "err", err, "camera", r.Camera, "who", r.Who, "action", e.Action)
		return err
	}
	return nil
}
