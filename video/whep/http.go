package whep

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

// Authorizer decides who may view a camera: it returns the viewer's name
// (for the audit log), or ErrUnauthorized / ErrForbidden.
type Authorizer func(r *http.Request, camera string) (who string, err error)

// Handler serves WHEP under base (e.g. "/api/v1/cameras"): see the
// package doc for the routes. authorize is asked on every request.
func (s *Server) Handler(base string, authorize Authorizer) http.Handler {
	base = strings.TrimSuffix(base, "/")
	mux := http.NewServeMux()
	res := base + "/{camera}/whep"
	mux.HandleFunc("POST "+res, func(w http.ResponseWriter, r *http.Request) { s.post(w, r, base, authorize) })
	mux.HandleFunc("OPTIONS "+res, func(w http.ResponseWriter, r *http.Request) { s.options(w, r, authorize) })
	mux.HandleFunc("PATCH "+res+"/{id}", func(w http.ResponseWriter, r *http.Request) { s.patch(w, r, authorize) })
	mux.HandleFunc("DELETE "+res+"/{id}", func(w http.ResponseWriter, r *http.Request) { s.delete(w, r, authorize) })
	return mux
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request, authorize Authorizer) (string, bool) {
	who, err := authorize(r, r.PathValue("camera"))
	switch {
	case err == nil:
		return who, true
	case errors.Is(err, ErrForbidden):
		s.metrics.refused.WithLabelValues("forbidden").Inc()
		httpError(w, http.StatusForbidden, err.Error())
	case errors.Is(err, ErrUnknownCamera):
		httpError(w, http.StatusNotFound, err.Error())
	default:
		s.metrics.refused.WithLabelValues("unauthorized").Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="shelterwatch"`)
		httpError(w, http.StatusUnauthorized, err.Error())
	}
	return "", false
}

func (s *Server) post(w http.ResponseWriter, r *http.Request, base string, authorize Authorizer) {
	who, ok := s.authorize(w, r, authorize)
	if !ok {
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/sdp" {
		httpError(w, http.StatusUnsupportedMediaType, "a WHEP offer is application/sdp")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSDP))
	if err != nil {
		httpError(w, http.StatusRequestEntityTooLarge, "offer larger than 64 KiB")
		return
	}
	camera := r.PathValue("camera")
	q := r.URL.Query()
	pref, err := parsePreference(q.Get("quality"), q.Get("tiles"))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	ss, answer, err := s.offer(r.Context(), camera, who, r.RemoteAddr, body, pref)
	if err != nil {
		code := http.StatusInternalServerError
		var oe *offerError
		if errors.As(err, &oe) {
			code = oe.code
		}
		if code == http.StatusServiceUnavailable {
			// A camera down is retried within its reconnect cap (2 s);
			// a full gateway later.
			retry := "5"
			if errors.Is(err, ErrCameraDown) {
				retry = "2"
			}
			w.Header().Set("Retry-After", retry)
		}
		s.log.Warn("video: offer refused", "camera", camera, "who", who, "remote", r.RemoteAddr, "err", err)
		httpError(w, code, err.Error())
		return
	}
	s.log.Info("video: viewing session started", "camera", camera, "who", who, "remote", r.RemoteAddr, "session", ss.id)
	h := w.Header()
	for _, l := range linkHeaders(iceServers(s.cfg.ICEServers, who, time.Now(), false)) {
		h.Add("Link", l)
	}
	h.Set("Content-Type", "application/sdp")
	h.Set("Location", base+"/"+camera+"/whep/"+ss.id)
	h.Set("ETag", ss.etag)
	h.Set("Accept-Patch", "application/trickle-ice-sdpfrag")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

func (s *Server) options(w http.ResponseWriter, r *http.Request, authorize Authorizer) {
	h := w.Header()
	h.Set("Accept-Post", "application/sdp")
	// ICE servers (with credentials) only for someone allowed to view.
	if who, err := authorize(r, r.PathValue("camera")); err == nil {
		for _, l := range linkHeaders(iceServers(s.cfg.ICEServers, who, time.Now(), false)) {
			h.Add("Link", l)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// session finds the session of a PATCH or DELETE, for its owner only.
func (s *Server) session(w http.ResponseWriter, r *http.Request, authorize Authorizer) *session {
	who, ok := s.authorize(w, r, authorize)
	if !ok {
		return nil
	}
	s.mu.Lock()
	ss := s.sessions[r.PathValue("id")]
	s.mu.Unlock()
	if ss == nil || ss.camera != r.PathValue("camera") {
		httpError(w, http.StatusNotFound, "no such session (it may have ended)")
		return nil
	}
	if ss.who != who {
		httpError(w, http.StatusForbidden, "this session belongs to another viewer")
		return nil
	}
	return ss
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, authorize Authorizer) {
	ss := s.session(w, r, authorize)
	if ss == nil {
		return
	}
	ss.stop("the viewer hung up")
	w.WriteHeader(http.StatusOK)
}

func (s *Server) patch(w http.ResponseWriter, r *http.Request, authorize Authorizer) {
	ss := s.session(w, r, authorize)
	if ss == nil {
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/trickle-ice-sdpfrag" {
		httpError(w, http.StatusUnsupportedMediaType, "a trickle ICE PATCH is application/trickle-ice-sdpfrag")
		return
	}
	if m := r.Header.Get("If-Match"); m != "*" && m != ss.etag {
		httpError(w, http.StatusPreconditionFailed, "If-Match does not name this session's ETag")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSDP))
	if err != nil {
		httpError(w, http.StatusRequestEntityTooLarge, "fragment larger than 64 KiB")
		return
	}
	ufrag, cands, err := parseFrag(string(body))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if ufrag != "" && ss.remoteUfrag != "" && ufrag != ss.remoteUfrag {
		// RFC 9725: a resource that trickles but does not restart ICE
		// answers a restart with 405.
		httpError(w, http.StatusMethodNotAllowed, "ICE restarts are not supported: send a new offer")
		return
	}
	for _, c := range cands {
		if err := ss.pc.AddICECandidate(c); err != nil {
			httpError(w, http.StatusBadRequest, "candidate refused: "+err.Error())
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}
